"""Ranked tables from the tidy results table: a pure function, no MLflow, no models.

Input: one row per finished (model, seed) run with ``model``, ``display_name``,
``seed``, ``valid``, the metric columns and ``group``. Output: the paper's Table 6
(mean (std) over valid runs, valid/attempted), Table 7 (rank per metric, average
rank) and Table 8 (ablations, % change against full EMDLOT).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench import stats
from bench.metrics import METRICS

REPORT = ("recall", "f1", "map", "auc")
REQUIRED = ("model", "display_name", "seed", "valid", *REPORT)
REFERENCE_MODEL = "emdlot"


class LeaderboardError(ValueError):
    pass


@dataclass
class Leaderboard:
    summary: pd.DataFrame  # one row per model: counts, mean/std/interval per metric, ranks
    ablations: pd.DataFrame  # Table 8 (empty when no ablation ran)
    header: dict[str, Any]
    pivot: pd.DataFrame = field(default_factory=pd.DataFrame)  # seeds x ranked models, composite
    friedman: dict[str, tuple[float, float]] = field(default_factory=dict)  # metric -> (chi2, p)

    def table6(self) -> pd.DataFrame:
        rows = []
        for _, r in self.summary.iterrows():
            row = {"Model": r["display_name"], "Valid/attempted": f"{r['valid_runs']}/{r['attempted_runs']}"}
            for m in REPORT:
                row[METRICS[m].display] = _fmt(r[f"{m}_mean"], r[f"{m}_std"]) + _ci(r, m)
            rows.append(row)
        return pd.DataFrame(rows)

    def table7(self) -> pd.DataFrame:
        ranked = self.summary[self.summary["ranked"]]
        rows = []
        for _, r in ranked.sort_values("avg_rank").iterrows():
            row = {"Model": r["display_name"]}
            row.update({METRICS[m].display: _rank(r[f"{m}_rank"]) for m in REPORT})
            row["Avg. rank"] = f"{r['avg_rank']:.2f}"
            if "tied_with_best" in r and not self.pivot.empty:
                row["Tied with best (Nemenyi)"] = "yes" if r["tied_with_best"] else ""
            rows.append(row)
        for _, r in self.summary[~self.summary["ranked"] & ~self.summary["is_ablation"]].iterrows():
            row = {"Model": r["display_name"], **{METRICS[m].display: "-" for m in REPORT},
                   "Avg. rank": "unranked (no valid run)"}
            if not self.pivot.empty:
                row["Tied with best (Nemenyi)"] = ""
            rows.append(row)
        return pd.DataFrame(rows)


def _fmt(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.4f} ({std:.4f})" if np.isfinite(std) else f"{mean:.4f} (-)"


def _ci(r: pd.Series, m: str) -> str:
    lo, hi = r.get(f"{m}_ci_low", np.nan), r.get(f"{m}_ci_high", np.nan)
    return f" [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) and np.isfinite(hi) else ""


def _rank(r: float) -> str:
    return f"{r:g}"


def check_results(df: pd.DataFrame) -> None:
    """Reject tables that cannot be ranked honestly (TabArena-style validation)."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise LeaderboardError(f"results table lacks column(s) {missing}")
    if df[["model", "seed"]].isna().any().any():
        raise LeaderboardError("results table has rows without model or seed")
    dup = df.duplicated(["model", "seed"])
    if dup.any():
        r = df.loc[dup].iloc[0]
        raise LeaderboardError(f"results table has two runs for model '{r['model']}' seed {r['seed']}")


def build(df: pd.DataFrame, header: dict[str, Any] | None = None) -> Leaderboard:
    """Aggregate per model, rank main models per metric (ties share the average rank)."""
    check_results(df)
    if "group" not in df.columns:
        df = df.assign(group="all")
    if "order" not in df.columns:
        df = df.assign(order=100)
    rows = []
    for model, g in df.groupby("model", sort=False):
        v = g[g["valid"].astype(bool)]
        groups = str(g["group"].iloc[0]).split(",")
        row = {"model": model, "display_name": g["display_name"].iloc[0], "order": int(g["order"].iloc[0]),
               "valid_runs": len(v), "attempted_runs": len(g),
               "is_ablation": "ablations" in groups, "ranked": len(v) > 0 and "ablations" not in groups}
        for m in REPORT:
            vals = v[m].astype(float)
            row[f"{m}_mean"] = float(vals.mean()) if len(vals) else float("nan")
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
        reps = [b for b in v["bootstrap"]] if "bootstrap" in v.columns else []
        if reps and all(b is not None for b in reps):
            ci = stats.seed_mean_interval(reps)
            for j, m in enumerate(stats.BOOT_METRICS):
                row[f"{m}_ci_low"], row[f"{m}_ci_high"] = float(ci[j, 0]), float(ci[j, 1])
        rows.append(row)
    summary = pd.DataFrame(rows).sort_values(["order", "model"]).reset_index(drop=True)
    ranked = summary["ranked"]
    for m in REPORT:
        sign = 1 if METRICS[m].higher_is_better else -1
        summary[f"{m}_rank"] = np.nan
        summary.loc[ranked, f"{m}_rank"] = (-sign * summary.loc[ranked, f"{m}_mean"]).rank(method="average")
    summary["avg_rank"] = summary[[f"{m}_rank" for m in REPORT]].mean(axis=1, skipna=False)
    lb = Leaderboard(summary=summary, ablations=_ablations(summary), header=header or {})
    _significance(lb, df)
    return lb


def _significance(lb: Leaderboard, df: pd.DataFrame) -> None:
    """Friedman over the seeds every ranked model ran validly; Nemenyi ties on the composite."""
    ranked = lb.summary.loc[lb.summary["ranked"], "model"].tolist()
    valid = df[df["valid"].astype(bool) & df["model"].isin(ranked)]
    if len(ranked) < 3 or "composite" not in valid.columns:
        return
    blocks = {m: valid.pivot_table(index="seed", columns="model", values=m).dropna()
              for m in (*REPORT, "composite")}
    if len(blocks["composite"]) < 2:
        return
    for m, table in blocks.items():
        if table.nunique().gt(1).any() or table.std(axis=1).gt(0).any():
            lb.friedman[m] = stats.friedman(table)
    lb.pivot = blocks["composite"].rename(columns=dict(zip(lb.summary["model"], lb.summary["display_name"],
                                                           strict=True)))
    tied = stats.tied_with_best(blocks["composite"])
    lb.summary["tied_with_best"] = lb.summary["model"].map(tied).fillna(False).astype(bool)


def _ablations(summary: pd.DataFrame) -> pd.DataFrame:
    ref = summary[summary["model"] == REFERENCE_MODEL]
    abl = summary[summary["is_ablation"] & (summary["valid_runs"] > 0)]
    if ref.empty or abl.empty or ref["valid_runs"].iloc[0] == 0:
        return pd.DataFrame()
    ref_row = ref.iloc[0]
    rows = []
    for _, r in pd.concat([abl, ref]).iterrows():
        row = {"Model": r["display_name"], "Valid/attempted": f"{r['valid_runs']}/{r['attempted_runs']}"}
        for m in REPORT:
            row[METRICS[m].display] = _fmt(r[f"{m}_mean"], r[f"{m}_std"])
            if r["model"] != REFERENCE_MODEL:
                change = 100.0 * (r[f"{m}_mean"] - ref_row[f"{m}_mean"]) / ref_row[f"{m}_mean"]
                row[f"{METRICS[m].display} Δ%"] = f"{change:+.2f}%"
            else:
                row[f"{METRICS[m].display} Δ%"] = "ref"
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- rendering
def render_markdown(lb: Leaderboard) -> str:
    h = lb.header
    lines = [f"# Leaderboard: {h.get('dataset', '?')} / {h.get('protocol', '?')}", ""]
    if h.get("synthetic"):
        lines += [f"> **Synthetic data.** These numbers come from simulated data (`{h.get('dataset', '?')}`), "
                  "not from the paper's proprietary Wind panel; they rank models on simulated data only.", ""]
    for key, label in (("command", "Command"), ("version", "Package version"), ("protocol", "Protocol"),
                       ("profile", "Profile"), ("wall_seconds", "Wall time of the last run (s)"),
                       ("git_commit", "Git commit"), ("data_fingerprint", "Data fingerprint"),
                       ("generated", "Generated")):
        if h.get(key) not in (None, ""):
            val = f"`{h[key]}`" if key == "command" else h[key]
            lines.append(f"- {label}: {val}")
    for note in h.get("notes", []):
        lines.append(f"- {note}")
    lines += ["", "## Table 6: mean (std) [bootstrap 95% interval] over valid runs", "",
              tabulate(lb.table6(), headers="keys", tablefmt="github", showindex=False), "",
              "## Table 7: rank per metric (1 = best; ties share the average rank)", "",
              tabulate(lb.table7(), headers="keys", tablefmt="github", showindex=False), ""]
    if lb.friedman:
        n = len(lb.pivot)
        lines += [f"## Significance (Friedman over the {n} seed(s) where every ranked model ran validly)", "",
                  tabulate([{"Metric": METRICS[m].display, "chi2": f"{c:.2f}", "p-value": f"{p:.3g}"}
                            for m, (c, p) in lb.friedman.items()], headers="keys", tablefmt="github"), "",
                  "Nemenyi post-hoc on the composite score: 'Tied with best' marks models the test cannot "
                  "separate from the best-ranked one (alpha 0.05); see the critical-difference diagram "
                  f"`{h.get('dataset', 'dataset')}-cd.png`.", ""]
    if not lb.ablations.empty:
        lines += ["## Table 8: ablations, % change against full EMDLOT", "",
                  tabulate(lb.ablations, headers="keys", tablefmt="github", showindex=False), ""]
    lines += ["A run is valid only if its test predictions contain every class (the paper's rule); "
              "models with no valid run are listed but unranked.", ""]
    return "\n".join(lines)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(lb: Leaderboard, out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>.md``, ``.csv`` and ``.json``; each file is replaced atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv, js = (out_dir / f"{stem}.{ext}" for ext in ("md", "csv", "json"))
    _atomic_write(md, render_markdown(lb))
    _atomic_write(csv, lb.summary.to_csv(index=False))
    payload = {"header": lb.header, "summary": json.loads(lb.summary.to_json(orient="records")),
               "friedman": {m: {"chi2": c, "p": p} for m, (c, p) in lb.friedman.items()},
               "ablations": json.loads(lb.ablations.to_json(orient="records")) if not lb.ablations.empty else []}
    _atomic_write(js, json.dumps(payload, indent=2, default=str))
    paths = [md, csv, js]
    if not lb.pivot.empty:
        paths.append(stats.cd_diagram(lb.pivot, out_dir / f"{stem}-cd.png",
                                      f"{lb.header.get('dataset', '')}: average rank of the composite over seeds"))
    return paths
