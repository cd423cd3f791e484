"""How much of a score is real: bootstrap intervals, Friedman test, Nemenyi post-hoc, CD diagram.

Bootstrap: each run's test entities are resampled within their true class (so every
class keeps its test count and recall stays defined); replicate ``b`` of every seed is
averaged, giving replicate ``b`` of the seed-mean, whose 2.5/97.5 percentiles are the
interval reported beside the mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import friedmanchisquare
from sklearn.metrics import average_precision_score, f1_score, recall_score, roc_auc_score

BOOT_METRICS = ("recall", "f1", "map", "auc")
N_BOOT = 200


def bootstrap_replicates(y: np.ndarray, proba: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """[n_boot, 4] replicate values of (recall, f1, map, auc) under a class-stratified bootstrap."""
    rng = np.random.default_rng(seed)
    n_classes = proba.shape[1]
    labels = np.arange(n_classes)
    by_class = [np.flatnonzero(y == c) for c in labels]
    out = np.full((n_boot, len(BOOT_METRICS)), np.nan)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(ix, size=len(ix)) for ix in by_class if len(ix)])
        yb, pb = y[idx], proba[idx]
        pred = pb.argmax(axis=1)
        onehot = (yb[:, None] == labels[None, :]).astype(int)
        present = [c for c in labels if 0 < onehot[:, c].sum() < len(yb)]
        out[b, 0] = recall_score(yb, pred, labels=labels, average="macro", zero_division=0)
        out[b, 1] = f1_score(yb, pred, labels=labels, average="macro", zero_division=0)
        out[b, 2] = np.mean([average_precision_score(onehot[:, c], pb[:, c]) for c in present])
        out[b, 3] = np.mean([roc_auc_score(onehot[:, c], pb[:, c]) for c in present])
    return out


def seed_mean_interval(replicates: list[np.ndarray], level: float = 0.95) -> np.ndarray:
    """[4, 2] (low, high) of the mean over runs, from per-run replicate arrays of equal length."""
    stacked = np.nanmean(np.stack(replicates), axis=0)  # [B, 4]
    alpha = (1 - level) / 2 * 100
    return np.nanpercentile(stacked, [alpha, 100 - alpha], axis=0).T


def friedman(table: pd.DataFrame) -> tuple[float, float]:
    """Friedman chi-square over blocks (rows = seeds) and treatments (columns = models)."""
    stat, p = friedmanchisquare(*[table[c].to_numpy() for c in table.columns])
    return float(stat), float(p)


def nemenyi(table: pd.DataFrame) -> pd.DataFrame:
    """Pairwise Nemenyi p-values after Friedman (scikit-posthocs)."""
    import scikit_posthocs as sp

    return sp.posthoc_nemenyi_friedman(table.to_numpy()).set_axis(table.columns, axis=0).set_axis(
        table.columns, axis=1)


def average_ranks(table: pd.DataFrame) -> pd.Series:
    """Rank 1 = best (highest score) within each seed, averaged over seeds."""
    return table.rank(axis=1, ascending=False, method="average").mean(axis=0)


def tied_with_best(table: pd.DataFrame, alpha: float = 0.05) -> dict[str, bool]:
    """Models the Nemenyi test cannot separate from the best-ranked one."""
    ranks = average_ranks(table)
    best = ranks.idxmin()
    p = nemenyi(table)
    return {m: bool(m == best or p.loc[best, m] >= alpha) for m in table.columns}


def cd_diagram(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Critical-difference diagram (scikit-posthocs) written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scikit_posthocs as sp

    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.35 * len(table.columns)))
    sp.critical_difference_diagram(average_ranks(table), nemenyi(table), ax=ax)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
