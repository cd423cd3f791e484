"""Describe a panel the way the paper describes its data, so any dataset can be checked against it.

:func:`describe` returns plain tables (Table 4's class counts, Tables A.3/A.4's
indicator statistics, plus sequence lengths and event timing, which drive the leakage
questions of the end-aligned protocol); :func:`write_description` saves them as CSV
with one PNG. Synthetic data says so in the overview table and the figure title.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.panel import Panel
from bench.views import month_index

if TYPE_CHECKING:
    from matplotlib.figure import Figure

QUANTILES = (0.01, 0.25, 0.5, 0.75, 0.99)
STATS = ("count", "mean", "std", "min", "1%", "25%", "50%", "75%", "99%", "max")


def _stats(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per column: count, mean, std, min, quantiles, max and the missing share in percent."""
    if frame.shape[1] == 0:  # e.g. no macro table
        return pd.DataFrame(columns=[*STATS, "missing (%)"])
    out = frame.describe(percentiles=list(QUANTILES)).T[list(STATS)]
    out["count"] = out["count"].astype(int)
    out["missing (%)"] = frame.isna().mean() * 100
    return out


def describe(panel: Panel) -> dict[str, pd.DataFrame]:
    """Description tables: overview, classes, lengths, length_counts, financial, macro, events."""
    obs = panel.observations
    names = list(panel.class_names)
    summary = panel.summary()
    overview = pd.DataFrame({"value": {
        "dataset": panel.name,
        "synthetic": "yes (simulated data, not real firms)" if panel.synthetic else "no",
        "entities": summary["entities"],
        "observations": summary["observations"],
        "periods": summary["periods"],
        "frequency": obs["period"].array.freqstr,
        "financial indicators": summary["financial"],
        "macro series": summary["macro"],
        "text sections": ", ".join(panel.sections) or "none",
    }}).rename_axis("field")

    counts = pd.Series(panel.class_counts())
    classes = pd.DataFrame({"count": counts, "share (%)": counts / counts.sum() * 100})
    classes.loc["total"] = [counts.sum(), 100.0]
    classes = classes.astype({"count": int}).rename_axis("class")

    per_entity = obs.groupby("entity").size().astype(float)
    steps = pd.DataFrame({"entity": obs["entity"].to_numpy(), "month": month_index(obs["period"])})
    gaps = steps.sort_values(["entity", "month"]).groupby("entity")["month"].diff().dropna()
    lengths = pd.concat([
        _stats(per_entity.to_frame("observations per entity")),
        _stats(gaps.astype(float).to_frame("months between observations")),
    ]).drop(columns="missing (%)").rename_axis("quantity")
    length_counts = per_entity.astype(int).value_counts().sort_index()

    macro_table = panel.macro[list(panel.macro_columns)] if panel.macro is not None else pd.DataFrame()
    with_event = panel.entities.loc[panel.entities["event_period"].notna()]
    year = pd.Series([period.year for period in with_event["event_period"]], name="year", dtype="int64")
    cls = pd.Series(np.asarray(names, dtype=object)[with_event["label"].to_numpy()], name="class")
    events = pd.crosstab(year, cls).reindex(columns=pd.Index(names, name="class"), fill_value=0)
    events["total"] = events.sum(axis=1)

    return {
        "overview": overview,
        "classes": classes,
        "lengths": lengths,
        "length_counts": length_counts.rename("entities").rename_axis("observations").to_frame(),
        "financial": _stats(obs[list(panel.financial)]).rename_axis("indicator"),
        "macro": _stats(macro_table).rename_axis("indicator"),
        "events": events,
    }


def write_description(
    tables: dict[str, pd.DataFrame], out_dir: str | os.PathLike[str], name: str,
) -> list[Path]:
    """Write ``<name>-<table>.csv`` per table and ``<name>.png``: a description to diff and share."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "dataset"
    written = []
    for key, table in tables.items():
        written.append(out / f"{stem}-{key}.csv")
        table.to_csv(written[-1])
    written.append(out / f"{stem}.png")
    _figure(tables, name).savefig(written[-1], dpi=100)
    return written


def _figure(tables: dict[str, pd.DataFrame], name: str) -> Figure:
    """Two panels: the histogram of sequence lengths and event counts by year and class."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state; savefig renders with Agg
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    lengths = tables["length_counts"]["entities"]
    left.bar(lengths.index, lengths.to_numpy(), color="tab:blue")
    left.set(title="Sequence length", xlabel="observations per entity", ylabel="entities")
    events = tables["events"].drop(columns="total")
    events = events.loc[:, events.sum() > 0]
    width = 0.8 / max(events.shape[1], 1)
    offsets = (np.arange(events.shape[1]) - (events.shape[1] - 1) / 2) * width
    for offset, cls in zip(offsets, events.columns, strict=True):
        right.bar(events.index + offset, events[cls].to_numpy(), width, label=cls)
    if events.empty:
        right.text(0.5, 0.5, "no events", ha="center", va="center", transform=right.transAxes)
    else:
        right.legend(title="class")
        right.set_xticks(events.index)
    right.set(title="Event timing", xlabel="event year", ylabel="entities")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (left, right):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    synthetic = str(tables["overview"].loc["synthetic", "value"]).startswith("yes")
    fig.suptitle(name + (" (SYNTHETIC data)" if synthetic else ""))
    return fig
