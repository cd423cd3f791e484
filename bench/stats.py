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
from scipy.stats import friedmanchisquare, rankdata

BOOT_METRICS = ("recall", "f1", "map", "auc")
N_BOOT = 200


def bootstrap_replicates(y: np.ndarray, proba: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """[n_boot, 4] replicate values of (recall, f1, map, auc) under a class-stratified bootstrap.

    All replicates at once: recall and F1 from per-replicate confusion counts, one-vs-rest
    AUC from average ranks (the Mann-Whitney form, equal to ``roc_auc_score`` with ties),
    AP as scikit-learn defines it (a test checks both against scikit-learn). Class counts are
    fixed by the stratification, so every class is present in every replicate.
    """
    rng = np.random.default_rng(seed)
    n_classes = proba.shape[1]
    by_class = [np.flatnonzero(y == c) for c in range(n_classes)]
    idx = np.concatenate([ix[rng.integers(0, len(ix), size=(n_boot, len(ix)))] for ix in by_class if len(ix)],
                         axis=1)  # [B, n]
    yb, pb = y[idx], proba[idx]  # [B, n], [B, n, C]
    pred = pb.argmax(axis=2)
    out = np.full((n_boot, len(BOOT_METRICS)), np.nan)
    recalls, f1s, aucs, aps = [], [], [], []
    for c in range(n_classes):
        pos, hit = yb == c, pred == c
        tp, n_pos, n_hit = (pos & hit).sum(1), pos.sum(1), hit.sum(1)
        recalls.append(np.divide(tp, n_pos, out=np.zeros(n_boot), where=n_pos > 0))
        f1s.append(np.divide(2 * tp, n_pos + n_hit, out=np.zeros(n_boot), where=(n_pos + n_hit) > 0))
        n_neg = pos.shape[1] - n_pos
        if n_pos[0] == 0 or n_neg[0] == 0:
            continue
        ranks = rankdata(pb[:, :, c], axis=1)
        aucs.append(((ranks * pos).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
        aps.append(_average_precision(pos, pb[:, :, c]))
    out[:, 0] = np.mean(recalls, axis=0)
    out[:, 1] = np.mean(f1s, axis=0)
    if aucs:
        out[:, 2] = np.mean(aps, axis=0)
        out[:, 3] = np.mean(aucs, axis=0)
    return out


def _average_precision(pos: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Row-wise AP = sum over thresholds of (recall step) x precision, ties forming one threshold."""
    order = np.argsort(-score, axis=1, kind="stable")
    s = np.take_along_axis(score, order, axis=1)
    p = np.take_along_axis(pos, order, axis=1)
    n = s.shape[1]
    tp = np.cumsum(p, axis=1)
    precision = tp / np.arange(1, n + 1)
    is_last = np.ones_like(p)
    is_last[:, :-1] = s[:, :-1] != s[:, 1:]
    ends = np.where(is_last, np.arange(n), n)
    group_end = np.minimum.accumulate(ends[:, ::-1], axis=1)[:, ::-1]  # last index of each tie group
    return (p * np.take_along_axis(precision, group_end, axis=1)).sum(axis=1) / p.sum(axis=1)


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
