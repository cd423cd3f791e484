"""The evaluation protocol as versioned data: loaded from a TOML file into a frozen object.

Its hash goes into every MLflow run, so results made under different protocols are
never mixed on one leaderboard.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, replace
from importlib.resources import files
from pathlib import Path

DEFAULT_PROTOCOL = "paper-v1"


class ProtocolError(ValueError):
    pass


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    alignment: str
    split_kind: str
    test_size: float
    valid_size: float
    max_len: int
    drop_quarters_before_event: int
    imputation: str
    scaling: str
    clip: float
    text_components: int
    text_encoder: str
    resampling: str
    k_neighbors: int
    require_all_classes: bool
    initial_seeds: tuple[int, ...]
    extra_seed_start: int
    target_valid: int
    max_attempts: int
    report_metrics: tuple[str, ...]
    composite_weights: tuple[tuple[str, float], ...]

    def hash(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def seed_order(self) -> list[int]:
        """The fixed order in which seeds are attempted: the paper's ten, then extra ones."""
        extra = [s for s in range(self.extra_seed_start, self.extra_seed_start + self.max_attempts)
                 if s not in self.initial_seeds]
        return (list(self.initial_seeds) + extra)[: max(self.max_attempts, len(self.initial_seeds))]

    def as_params(self) -> dict[str, str]:
        return {f"protocol.{k}": str(v) for k, v in asdict(self).items()}


def _get(d: dict, path: str, src: str):
    cur = d
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise ProtocolError(f"protocol file {src}: missing key '{path}'")
        cur = cur[part]
    return cur


MODIFIERS = {"matched": ("alignment", "matched"), "temporal": ("split_kind", "temporal"),
             "minilm": ("text_encoder", "minilm")}


def load_protocol(spec: str = DEFAULT_PROTOCOL) -> Protocol:
    """Load a packaged protocol by name (``paper-v1``) or a TOML file by path.

    Audit modifiers may follow with ``+``: ``paper-v1+matched`` (non-event firms cut at
    dates matched to the event firms'), ``paper-v1+temporal`` (out-of-time split); the
    name keeps them, so their runs land in their own experiment; ``paper-v1+minilm`` embeds
    the prospectus text with MiniLM instead of TF-IDF+SVD (extra ``[text]``).
    """
    base, *mods = spec.split("+")
    bad = [m for m in mods if m not in MODIFIERS]
    if bad:
        raise ProtocolError(f"unknown protocol modifier '+{bad[0]}' in '{spec}'; known: "
                            + ", ".join(f"+{m}" for m in MODIFIERS))
    p = _load_base(base)
    if mods:
        p = replace(p, name=spec, **dict(MODIFIERS[m] for m in mods))
    return p


def _load_base(spec: str) -> Protocol:
    path = Path(spec)
    if path.suffix == ".toml" and path.exists():
        text, src = path.read_text(), str(path)
    else:
        res = files("bench.protocols").joinpath(f"{spec}.toml")
        if not res.is_file():
            known = sorted(p.name.removesuffix(".toml") for p in files("bench.protocols").iterdir()
                           if p.name.endswith(".toml"))
            raise ProtocolError(f"unknown protocol '{spec}': not a .toml file and not one of {known}")
        text, src = res.read_text(), f"bench/protocols/{spec}.toml"
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"protocol file {src}: {exc}") from exc
    p = Protocol(
        name=str(_get(d, "name", src)),
        description=str(d.get("description", "")),
        alignment=str(d.get("alignment", {}).get("mode", "paper")),
        split_kind=str(_get(d, "split.kind", src)),
        test_size=float(_get(d, "split.test_size", src)),
        valid_size=float(_get(d, "split.valid_size", src)),
        max_len=int(_get(d, "alignment.max_len", src)),
        drop_quarters_before_event=int(_get(d, "alignment.drop_quarters_before_event", src)),
        imputation=str(_get(d, "preprocess.imputation", src)),
        scaling=str(_get(d, "preprocess.scaling", src)),
        clip=float(_get(d, "preprocess.clip", src)),
        text_components=int(_get(d, "preprocess.text_components", src)),
        text_encoder=str(_get(d, "preprocess.text_encoder", src)),
        resampling=str(_get(d, "resampling.method", src)),
        k_neighbors=int(_get(d, "resampling.k_neighbors", src)),
        require_all_classes=bool(_get(d, "validity.require_all_classes", src)),
        initial_seeds=tuple(int(s) for s in _get(d, "seeds.initial", src)),
        extra_seed_start=int(_get(d, "seeds.extra_start", src)),
        target_valid=int(_get(d, "seeds.target_valid", src)),
        max_attempts=int(_get(d, "seeds.max_attempts", src)),
        report_metrics=tuple(_get(d, "metrics.report", src)),
        composite_weights=tuple(sorted((k, float(v)) for k, v in _get(d, "metrics.composite", src).items())),
    )
    if not 0 < p.test_size < 1 or not 0 <= p.valid_size < 1:
        raise ProtocolError(f"protocol file {src}: split sizes must be in (0, 1)")
    if p.split_kind not in ("random", "temporal"):
        raise ProtocolError(f"protocol file {src}: split.kind must be 'random' or 'temporal', got '{p.split_kind}'")
    if p.text_encoder not in ("tfidf-svd", "minilm"):
        raise ProtocolError(f"protocol file {src}: preprocess.text_encoder must be 'tfidf-svd' or 'minilm'")
    if p.alignment not in ("paper", "matched"):
        raise ProtocolError(f"protocol file {src}: alignment.mode must be 'paper' or 'matched'")
    if p.resampling not in ("smote", "none"):
        raise ProtocolError(f"protocol file {src}: resampling.method must be 'smote' or 'none'")
    return p
