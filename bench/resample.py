"""Oversampling of the training part only (the runner never passes validation or test rows here)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from imblearn.over_sampling import SMOTE, RandomOverSampler

from bench.views import SequenceView, TabularView


def smote_tabular(view: TabularView, seed: int, k_neighbors: int = 5) -> TabularView:
    """imblearn SMOTE up to the majority count (1:1:1); k shrinks for tiny classes."""
    smallest = int(np.bincount(view.y).min())
    sampler = (RandomOverSampler(random_state=seed) if smallest < 2
               else SMOTE(k_neighbors=min(k_neighbors, smallest - 1), random_state=seed))
    X, y = sampler.fit_resample(view.X, view.y)
    n_new = len(y) - len(view.y)
    entity = np.concatenate([view.entity, np.array([f"smote-{i}" for i in range(n_new)], dtype=object)])
    return replace(view, X=X.astype(np.float32), y=y.astype(np.int64), entity=entity)


def oversample(view: SequenceView | TabularView, seed: int, k_neighbors: int = 5) -> SequenceView | TabularView:
    if isinstance(view, TabularView):
        return smote_tabular(view, seed, k_neighbors)
    from bench.seqsmote import sequence_smote

    return sequence_smote(view, seed=seed, k_neighbors=k_neighbors)
