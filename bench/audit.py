"""Leakage audit: the same models under the paper's alignment, matched alignment and an
out-of-time split, next to calendar probes that see no firm information.

Under the paper's alignment performing firms run to the end of the data while event
firms stop two quarters before their event, so *when* a history ends predicts the label.
The probes measure how much; ``+matched`` cuts performing firms at dates drawn from the
event firms' and should bring the probes back to chance; ``+matched+temporal`` also tests
on firms whose outcome became known after a cut-off date. Every run is an ordinary
``bench run`` (MLflow, resumable) in its own ``... [audit]`` experiment, kept off the leaderboards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd

from bench import registry
from bench.protocol import load_protocol
from bench.runner import DataSpec, _context, experiment_name, run_benchmark, split_for
from bench.split import SplitError
from bench.tracking import Tracker

SETTINGS = {"paper": "", "matched": "+matched", "temporal": "+matched+temporal"}
PROBES = ("probe", "probe-lightgbm")


def run_audit(data: DataSpec, models: str, tracker: Tracker, *, seeds: int | list[int] = 3,
              profile: str = "paper", executor_factory: Callable[[], Any] | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> pd.DataFrame:
    """Run ``models`` and the probes under each setting; one row per (model, setting).

    The audit runs a fixed seed list (a count means the protocol's first seeds) and averages
    over every finished run, valid or not: a probe that never predicts a rare class still
    shows, through its AUC, how much the calendar reveals. Valid/attempted is reported.
    """
    keys = [e.key for e in registry.resolve(models)] + list(PROBES)
    if isinstance(seeds, int):
        seeds = list(load_protocol(data.protocol).seed_order()[:seeds])
    rows = []
    for setting, suffix in SETTINGS.items():
        spec = replace(data, protocol=data.protocol + suffix)
        try:
            _, raw, proto = _context(spec)
            split_for(raw, proto, proto.initial_seeds[0])
        except SplitError as exc:  # e.g. no performing firm after the cut-off: report, run the rest
            rows.append({"model": "", "display_name": "", "setting": setting, "error": str(exc)})
            continue
        run_benchmark(spec, ",".join(keys), tracker, seeds=seeds, profile=profile,
                      executor=executor_factory() if executor_factory else None, command=f"bench audit ({setting})",
                      progress=progress, kind="audit")
        df = tracker.results_table(tracker.experiment_id(experiment_name(spec, "audit"), kind="audit"))
        for model, g in df[df["model"].isin(keys) & df["seed"].isin(seeds)].groupby("model"):
            rows.append({"model": model, "display_name": g["display_name"].iloc[0], "setting": setting,
                         "recall": g["recall"].mean(), "auc": g["auc"].mean(), "composite": g["composite"].mean(),
                         "valid": f"{int(g['valid'].sum())}/{len(g)}"})
    return pd.DataFrame(rows)


def side_by_side(results: pd.DataFrame, n_classes: int) -> pd.DataFrame:
    """Models as rows, settings as columns (macro recall and AUC), probes last, chance level noted."""
    if "error" in results.columns:
        results = results[results["error"].isna()]
    out = results.pivot_table(index=["model", "display_name"], columns="setting",
                              values=["recall", "auc", "valid"], aggfunc="first")
    out.columns = [f"{metric} ({setting})" for metric, setting in out.columns]
    cols = [f"{m} ({s})" for s in SETTINGS for m in ("recall", "auc", "valid") if f"{m} ({s})" in out.columns]
    out = out[cols].reset_index()
    out["is_probe"] = out["model"].isin(PROBES)
    out = out.sort_values(["is_probe", "model"]).drop(columns=["is_probe", "model"])
    out.attrs["chance_recall"] = 1.0 / n_classes
    return out.rename(columns={"display_name": "Model"})
