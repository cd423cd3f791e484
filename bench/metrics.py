"""Macro metrics of the paper (appendix B/C), computed with scikit-learn.

Every metric declares its direction, so ranking never special-cases one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    recall_score,
    roc_auc_score,
)
from sklearn.preprocessing import label_binarize

PAPER_COMPOSITE = {"recall": 0.4, "f1": 0.25, "auc": 0.25, "map": 0.1}


@dataclass(frozen=True)
class Metric:
    key: str
    display: str
    higher_is_better: bool = True


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("recall", "Recall"),
        Metric("f1", "F1-score"),
        Metric("map", "mAP"),
        Metric("auc", "AUC"),
        Metric("composite", "Composite"),
    )
}


def composite(scores: Mapping[str, float], weights: Mapping[str, float] = PAPER_COMPOSITE) -> float:
    """Appendix C.2: 0.4·Recall + 0.25·F1 + 0.25·AUC + 0.1·mAP."""
    return float(sum(w * scores[k] for k, w in weights.items()))


def objective(scores: Mapping[str, float], n_predicted: int, n_classes: int,
              weights: Mapping[str, float] = PAPER_COMPOSITE) -> float:
    """Appendix C.1/C.3: the composite when every class is predicted, else the penalty score."""
    c = composite(scores, weights)
    if n_predicted == n_classes:
        return c
    return 0.5 * c + 0.3 * n_predicted / n_classes


def evaluate(y_true: np.ndarray, proba: np.ndarray, class_names: tuple[str, ...] | list[str],
             weights: Mapping[str, float] = PAPER_COMPOSITE) -> dict:
    """All metrics of one run. ``proba`` is [N, C] in class-index order.

    AUC and AP of a class absent from ``y_true`` are undefined; they are reported as
    NaN for that class and left out of the macro mean (sklearn would raise).
    """
    y_true = np.asarray(y_true)
    n_classes = len(class_names)
    labels = np.arange(n_classes)
    y_pred = proba.argmax(axis=1)
    onehot = label_binarize(y_true, classes=labels)
    if n_classes == 2:
        onehot = np.hstack([1 - onehot, onehot])
    per_ap = np.full(n_classes, np.nan)
    per_auc = np.full(n_classes, np.nan)
    for c in labels:
        if 0 < onehot[:, c].sum() < len(y_true):
            per_ap[c] = average_precision_score(onehot[:, c], proba[:, c])
            per_auc[c] = roc_auc_score(onehot[:, c], proba[:, c])
    per_recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    scores = {
        "recall": float(recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "map": float(np.nanmean(per_ap)) if np.isfinite(per_ap).any() else float("nan"),
        "auc": float(np.nanmean(per_auc)) if np.isfinite(per_auc).any() else float("nan"),
    }
    n_predicted = len(np.unique(y_pred))
    scores["composite"] = composite(scores, weights)
    return {
        **scores,
        "objective": objective(scores, n_predicted, n_classes, weights),
        "n_predicted_classes": n_predicted,
        "valid": is_valid(proba, n_classes),
        "per_class_recall": {name: float(r) for name, r in zip(class_names, per_recall, strict=True)},
        "per_class_ap": {name: float(a) for name, a in zip(class_names, per_ap, strict=True)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def is_valid(proba: np.ndarray, n_classes: int) -> bool:
    """The paper's validity rule: the run predicts every class at least once."""
    return len(np.unique(proba.argmax(axis=1))) == n_classes
