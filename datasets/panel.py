"""``panel:DIR``: the user's own panel folder, read and checked by :mod:`bench.panelio`."""

from __future__ import annotations

from typing import Any

from bench.data import DatasetError, register_dataset
from bench.panel import Panel
from bench.panelio import load_folder


@register_dataset("panel", description="bring your own panel folder (see docs/panel-format.md)")
def load(arg: str | None, **options: Any) -> Panel:
    """Load the folder named after ``panel:``; it is data as given, so no option can reshape it."""
    if not arg:
        raise DatasetError("dataset 'panel' needs a folder: write panel:DIR, e.g. panel:./my_panel "
                           "(the folder format is described in docs/panel-format.md)")
    if options:
        given = ", ".join(sorted(options))
        raise DatasetError(f"dataset 'panel' takes no options, got {given}: a panel folder is loaded as it "
                           "is; --firms and --data-seed size and seed the simulator (simbond)")
    return load_folder(arg)
