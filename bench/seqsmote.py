"""Sequence-aware SMOTE: oversample a :class:`~bench.views.SequenceView` to 1:1:1 class counts.

Plain SMOTE on the flattened tensor would average a 12-quarter history with a 39-quarter one
and invent values at padded steps. Here each synthetic firm is a real firm of the class (the
*base*) moved toward one of its k nearest same-class neighbours:

* neighbours are found on the flattened masked features plus the text embeddings;
* the synthetic row keeps the base's mask and Δt (its observation calendar), so it is end-aligned
  and padding stays exactly 0;
* on steps where both are observed, ``X = X_base + g·(X_nb − X_base)`` with one ``g ~ U[0, 1)``
  per synthetic row; steps the neighbour did not observe keep the base's values;
* text embeddings are interpolated with the same ``g``.

A class with a single member has no neighbour: it is duplicated with noise-free copies.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.neighbors import NearestNeighbors

from bench.views import SequenceView


def sequence_smote(view: SequenceView, seed: int, k_neighbors: int = 5) -> SequenceView:
    """Every class up to the majority count; original rows first, then synthetic ``smote-<i>`` rows.

    Deterministic for a given ``seed``; ``k_neighbors`` is clipped to the class size minus one.
    """
    counts = np.bincount(view.y, minlength=len(view.class_names))
    target = counts.max()
    rng = np.random.default_rng(seed)
    flat = np.concatenate([(view.X * view.mask[..., None]).reshape(len(view), -1),
                           view.text.reshape(len(view), -1)], axis=1)
    base_idx, nb_idx, gaps = [], [], []
    for c, n_c in enumerate(counts):
        n_new = target - n_c
        if n_new == 0 or n_c == 0:
            continue
        members = np.flatnonzero(view.y == c)
        bases = rng.integers(0, n_c, size=n_new)
        if n_c == 1:
            neighbours, gap = bases, np.zeros(n_new)
        else:
            k = min(k_neighbors, n_c - 1)
            table = NearestNeighbors(n_neighbors=k).fit(flat[members]).kneighbors(return_distance=False)
            neighbours = table[bases, rng.integers(0, k, size=n_new)]
            gap = rng.random(n_new)
        base_idx.append(members[bases])
        nb_idx.append(members[neighbours])
        gaps.append(gap)
    if not base_idx:
        return view
    b, nb, g = np.concatenate(base_idx), np.concatenate(nb_idx), np.concatenate(gaps).astype(np.float32)
    both = (view.mask[b] & view.mask[nb])[..., None]
    X = view.X[b] + np.where(both, g[:, None, None] * (view.X[nb] - view.X[b]), 0).astype(np.float32)
    text = view.text[b] + g[:, None, None] * (view.text[nb] - view.text[b])
    entity = np.array([f"smote-{i}" for i in range(len(b))], dtype=object)
    return replace(
        view,
        X=np.concatenate([view.X, X]), mask=np.concatenate([view.mask, view.mask[b]]),
        dt=np.concatenate([view.dt, view.dt[b]]), text=np.concatenate([view.text, text.astype(np.float32)]),
        y=np.concatenate([view.y, view.y[b]]), entity=np.concatenate([view.entity.astype(object), entity]),
    )
