"""Dataset sources: ``simbond`` (embedded simulator), ``panel:DIR`` (bring your own), ...

A source is a module in ``bench.datasets`` that decorates one loader with
:func:`register_dataset`. A spec is ``NAME`` or ``NAME:ARG`` (``panel:/path/to/dir``);
options such as ``firms`` are passed as keyword arguments and a source rejects the
ones it does not understand.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.panel import Panel


class DatasetError(ValueError):
    pass


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    loader: Callable[..., Panel]
    description: str
    synthetic: bool


_SOURCES: dict[str, DatasetEntry] = {}
_DISCOVERED = False


def register_dataset(name: str, *, description: str, synthetic: bool = False):
    """Decorator for ``loader(arg: str | None, **options) -> Panel``."""

    def deco(fn: Callable[..., Panel]) -> Callable[..., Panel]:
        if name in _SOURCES:
            raise DatasetError(f"dataset source '{name}' is registered twice")
        _SOURCES[name] = DatasetEntry(name, fn, description, synthetic)
        return fn

    return deco


def sources() -> list[DatasetEntry]:
    global _DISCOVERED
    if not _DISCOVERED:
        _DISCOVERED = True
        import bench.datasets as pkg

        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{pkg.__name__}.{info.name}")
    return sorted(_SOURCES.values(), key=lambda e: e.name)


def check_dataset_name(spec: str) -> DatasetEntry:
    """The source a spec names, or an error listing the known ones."""
    name = spec.partition(":")[0]
    known = {e.name: e for e in sources()}
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=2)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise DatasetError(f"unknown dataset '{name}'.{hint} Known: {', '.join(known)}")
    return known[name]


def load_dataset(spec: str, **options: Any) -> Panel:
    """Load ``NAME`` or ``NAME:ARG``; ``None``-valued options are dropped (source defaults apply)."""
    entry = check_dataset_name(spec)
    arg = spec.partition(":")[2]
    opts = {k: v for k, v in options.items() if v is not None}
    return entry.loader(arg or None, **opts)
