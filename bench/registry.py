"""The model registry: one decorator line per model, variants as parameter overrides.

Discovery is lazy (nothing is imported until the first lookup), walks the
``bench.models`` package (modules starting with ``_`` are helpers and skipped), then
the ``credit_seq_bench.models`` entry-point group, so an installed third-party file
registers exactly like a built-in. A module that fails to import is reported as
unavailable instead of breaking ``bench run --models all``.

Usage in a model file::

    @register
    class MyModel(ModelAdapter):
        name = "mymodel"; display_name = "MyModel"; view = "tabular"
        ...

    register_variant("mymodel-small", parent=MyModel, display_name="MyModel-S", overrides={"hidden": 8})
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import pkgutil
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from bench.adapter import ModelAdapter

ENTRY_POINT_GROUP = "credit_seq_bench.models"
GROUPS = ("all", "classic", "deep", "ablations")


class RegistryError(ValueError):
    pass


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: an adapter class plus fixed parameter overrides (variants)."""

    key: str
    display_name: str
    cls: type[ModelAdapter]
    overrides: dict[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ("all",)
    order: int = 100
    parent: str | None = None

    @property
    def view(self) -> str:
        return self.cls.view

    def unavailable_reason(self) -> str | None:
        """``None`` when every import the adapter needs is installed."""
        for mod in getattr(self.cls, "requires", ()):
            if importlib.util.find_spec(mod) is None:
                return f"python package '{mod}' is not installed"
        return None

    def params(self, profile: str = "paper", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.cls.resolve_params(profile, {**self.overrides, **(overrides or {})})

    def make(self, seed: int, profile: str = "paper", overrides: dict[str, Any] | None = None) -> ModelAdapter:
        return self.cls(seed=seed, **self.params(profile, overrides))


_ENTRIES: dict[str, ModelEntry] = {}
_FAILED: dict[str, str] = {}
_DISCOVERED = False


def _add(entry: ModelEntry) -> None:
    if not entry.key or entry.key != entry.key.lower():
        raise RegistryError(f"model key {entry.key!r} must be a non-empty lowercase name")
    if entry.key in _ENTRIES:
        prev = _ENTRIES[entry.key].cls
        raise RegistryError(
            f"model '{entry.key}' is registered twice ({prev.__module__}.{prev.__qualname__} and "
            f"{entry.cls.__module__}.{entry.cls.__qualname__})"
        )
    bad = set(entry.groups) - set(GROUPS)
    if bad:
        raise RegistryError(f"model '{entry.key}': unknown group(s) {sorted(bad)}; known {GROUPS}")
    unknown = set(entry.overrides) - set(entry.cls.default_params)
    if unknown:
        raise RegistryError(
            f"variant '{entry.key}': override(s) {sorted(unknown)} are not parameters of {entry.cls.name}"
        )
    _ENTRIES[entry.key] = entry


def register(cls: type[ModelAdapter] | None = None, *, groups: tuple[str, ...] = ("all",), order: int = 100):
    """Class decorator: add an adapter under its ``name`` (``@register`` or ``@register(groups=...)``)."""

    def deco(c: type[ModelAdapter]) -> type[ModelAdapter]:
        if not issubclass(c, ModelAdapter):
            raise RegistryError(f"{c.__qualname__} must subclass bench.adapter.ModelAdapter")
        if c.view not in ("sequence", "tabular"):
            raise RegistryError(f"model '{c.name}': view must be 'sequence' or 'tabular', got {c.view!r}")
        _add(ModelEntry(key=c.name, display_name=c.display_name or c.name, cls=c, groups=groups, order=order))
        return c

    return deco(cls) if cls is not None else deco


def register_variant(
    key: str, *, parent: type[ModelAdapter], display_name: str, overrides: dict[str, Any],
    groups: tuple[str, ...] = ("ablations",), order: int = 200,
) -> None:
    """Register a configuration of an existing adapter (e.g. an ablation) under its own key."""
    _add(ModelEntry(key=key, display_name=display_name, cls=parent, overrides=dict(overrides),
                    groups=groups, order=order, parent=parent.name))


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    import bench.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        _import(f"{pkg.__name__}.{info.name}", info.name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken plug-in must not break the built-ins
            _FAILED[ep.name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"model plug-in '{ep.name}' failed to load: {exc}", stacklevel=2)


def _import(module: str, label: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        _FAILED[label] = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"model module '{label}' is unavailable: {exc}", stacklevel=3)


def entries() -> list[ModelEntry]:
    """Every registered model in leaderboard order."""
    _discover()
    return sorted(_ENTRIES.values(), key=lambda e: (e.order, e.key))


def failed_modules() -> dict[str, str]:
    _discover()
    return dict(_FAILED)


def get(key: str) -> ModelEntry:
    _discover()
    if key in _ENTRIES:
        return _ENTRIES[key]
    if key in _FAILED:
        raise RegistryError(f"model '{key}' is unavailable: {_FAILED[key]}")
    close = difflib.get_close_matches(key, list(_ENTRIES) + list(GROUPS), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise RegistryError(f"unknown model '{key}'.{hint} Registered: {', '.join(e.key for e in entries())}")


def resolve(spec: str) -> list[ModelEntry]:
    """Turn ``"all"``, ``"ablations"`` or ``"lr,rf"`` into entries; skip unavailable ones in groups."""
    out: list[ModelEntry] = []
    for part in [p.strip().lower() for p in spec.split(",") if p.strip()]:
        if part in GROUPS:
            group = [e for e in entries() if part in e.groups]
            for e in group:
                reason = e.unavailable_reason()
                if reason:
                    warnings.warn(f"skipping model '{e.key}': {reason}", stacklevel=2)
                else:
                    out.append(e)
        else:
            e = get(part)
            reason = e.unavailable_reason()
            if reason:
                raise RegistryError(f"model '{e.key}' is unavailable: {reason}")
            out.append(e)
    if not out:
        raise RegistryError(f"--models {spec!r} selects no model")
    seen: set[str] = set()
    return [e for e in out if not (e.key in seen or seen.add(e.key))]
