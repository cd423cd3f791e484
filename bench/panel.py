"""The one data object every source produces and every stage consumes.

A :class:`Panel` holds a firm panel in long form, validated on construction so that
a bad source fails at load time with a message naming the column, row or entity,
never later inside a model.

Tables (pandas DataFrames):

* ``entities``: one row per firm: ``entity`` (str), ``label`` (int class index into
  ``class_names``), ``event_period`` (``pd.Period`` of the default/extension, or NaT),
  plus optional group columns (industry, region, ...).
* ``observations``: long, one row per (entity, period): ``entity``, ``period``
  (``pd.Period``), then the financial indicator columns (float, NaN = missing cell).
  Irregular by nature: gaps, late starts, semiannual or annual reporters.
* ``macro`` (optional): one row per period: ``period`` then the macro columns.
* ``text`` (optional): one row per (entity, section): ``entity``, ``section``, ``text``.
* ``ground_truth`` (optional): what drives each event, for simulated data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


class PanelError(ValueError):
    """Raised when panel data breaks the schema; the message names the culprit."""


@dataclass(frozen=True, eq=False)
class Panel:
    name: str
    entities: pd.DataFrame
    observations: pd.DataFrame
    class_names: tuple[str, ...]
    financial: tuple[str, ...]
    macro: pd.DataFrame | None = None
    macro_columns: tuple[str, ...] = ()
    text: pd.DataFrame | None = None
    sections: tuple[str, ...] = ()
    synthetic: bool = False
    ground_truth: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ basics
    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> np.ndarray:
        return self.entities["label"].to_numpy(dtype=np.int64)

    @property
    def entity_ids(self) -> np.ndarray:
        return self.entities["entity"].to_numpy()

    @property
    def freq(self) -> str:
        return self.observations["period"].array.freqstr

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=self.n_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts, strict=True)}

    def fingerprint(self) -> str:
        """Content hash of every table: the identity of the data in MLflow tags and caches."""
        h = hashlib.sha256()
        h.update(repr((self.name, self.class_names, self.financial, self.macro_columns, self.sections)).encode())
        for df in (self.entities, self.observations, self.macro, self.text):
            if df is None:
                h.update(b"none")
                continue
            frame = df.copy()
            for col in frame.columns:
                if isinstance(frame[col].dtype, pd.PeriodDtype):
                    frame[col] = frame[col].astype(str)
            h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        obs_per = self.observations.groupby("entity").size()
        return {
            "dataset": self.name,
            "synthetic": self.synthetic,
            "entities": len(self.entities),
            "classes": self.class_counts(),
            "observations": len(self.observations),
            "periods": f"{self.observations['period'].min()}..{self.observations['period'].max()}",
            "max_len": int(obs_per.max()),
            "financial": len(self.financial),
            "macro": len(self.macro_columns),
            "text_sections": list(self.sections),
            "missing_share": float(self.observations[list(self.financial)].isna().mean().mean()),
        }


def _fail(msg: str) -> None:
    raise PanelError(msg)


def _validate(p: Panel) -> None:
    ent, obs = p.entities, p.observations
    where = f"panel '{p.name}'"
    for col in ("entity", "label", "event_period"):
        if col not in ent.columns:
            _fail(f"{where}: entities table lacks required column '{col}'")
    for col in ("entity", "period"):
        if col not in obs.columns:
            _fail(f"{where}: observations table lacks required column '{col}'")
    if len(p.class_names) < 2:
        _fail(f"{where}: need at least two classes, got {list(p.class_names)}")
    if ent["entity"].duplicated().any():
        dup = ent.loc[ent["entity"].duplicated(), "entity"].iloc[0]
        _fail(f"{where}: entity '{dup}' appears twice in the entities table")
    labels = pd.to_numeric(ent["label"], errors="coerce")
    bad = labels.isna() | (labels < 0) | (labels >= len(p.class_names))
    if bad.any():
        row = ent.loc[bad].iloc[0]
        _fail(f"{where}: entity '{row['entity']}' has label {row['label']!r}; expected 0..{len(p.class_names) - 1}")
    present = np.bincount(labels.astype(int), minlength=len(p.class_names))
    if (present == 0).any():
        missing = [c for c, n in zip(p.class_names, present, strict=True) if n == 0]
        _fail(f"{where}: class(es) {missing} have no entity")
    if not isinstance(obs["period"].dtype, pd.PeriodDtype):
        _fail(f"{where}: observations column 'period' must be pandas Period, got {obs['period'].dtype}")
    if not p.financial:
        _fail(f"{where}: no financial indicator columns declared")
    for col in p.financial:
        if col not in obs.columns:
            _fail(f"{where}: observations lack indicator column '{col}'")
        if not pd.api.types.is_numeric_dtype(obs[col]):
            _fail(f"{where}: indicator column '{col}' is not numeric (dtype {obs[col].dtype})")
    dup = obs.duplicated(["entity", "period"])
    if dup.any():
        r = obs.loc[dup].iloc[0]
        _fail(f"{where}: duplicate observation for entity '{r['entity']}' period {r['period']}")
    known = set(ent["entity"].unique())
    seen = set(obs["entity"].unique())
    if seen - known:
        _fail(f"{where}: observations for entity '{sorted(seen - known)[0]}' which has no label")
    if known - seen:
        _fail(f"{where}: entity '{sorted(known - seen)[0]}' has a label but no observations")
    if p.macro is not None:
        if "period" not in p.macro.columns:
            _fail(f"{where}: macro table lacks column 'period'")
        for col in p.macro_columns:
            if col not in p.macro.columns:
                _fail(f"{where}: macro table lacks declared column '{col}'")
        uncovered = set(obs["period"].unique()) - set(p.macro["period"])
        if uncovered:
            _fail(f"{where}: macro table does not cover observation period {min(uncovered)}")
    elif p.macro_columns:
        _fail(f"{where}: macro columns declared but no macro table given")
    if p.text is not None:
        for col in ("entity", "section", "text"):
            if col not in p.text.columns:
                _fail(f"{where}: text table lacks column '{col}'")
        empty = p.text["text"].fillna("").str.strip() == ""
        if empty.any():
            r = p.text.loc[empty].iloc[0]
            _fail(f"{where}: empty text for entity '{r['entity']}' section '{r['section']}'")
        unknown = set(p.text["entity"]) - known
        if unknown:
            _fail(f"{where}: text for entity '{sorted(unknown)[0]}' which has no label")
