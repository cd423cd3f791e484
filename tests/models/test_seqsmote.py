"""Sequence-aware SMOTE: balance, provenance of every synthetic row, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from bench.seqsmote import sequence_smote
from tests.models.conftest import make_sequence_view


@pytest.fixture(scope="module")
def view():
    return make_sequence_view(n=70, counts=(50, 12, 8), seed=3)


def explained_by_a_pair(view, row_x, row_text, row_mask, row_dt, label) -> bool:
    """Is the synthetic row X_a + g·(X_b − X_a) (on steps both observed; X_a elsewhere) for real
    same-class rows a, b with one g ∈ [0, 1], a's mask and Δt, and text interpolated with that g?"""
    members = np.flatnonzero(view.y == label)
    bases = [a for a in members if np.array_equal(view.mask[a], row_mask) and np.array_equal(view.dt[a], row_dt)]
    for a in bases:
        for b in members:
            diff = view.text[b] - view.text[a]
            g = float((diff * (row_text - view.text[a])).sum() / max((diff ** 2).sum(), 1e-12))
            if not -1e-6 <= g <= 1 + 1e-6:
                continue
            both = (view.mask[a] & view.mask[b])[:, None]
            expect = view.X[a] + np.where(both, g * (view.X[b] - view.X[a]), 0)
            if np.allclose(row_x, expect, atol=1e-5) and np.allclose(row_text, view.text[a] + g * diff, atol=1e-5):
                return True
    return False


def test_balances_every_class_to_the_majority(view):
    out = sequence_smote(view, seed=0)
    assert np.bincount(out.y).tolist() == [50, 50, 50]


def test_original_rows_first_then_named_synthetic_rows(view):
    out = sequence_smote(view, seed=0)
    n = len(view)
    for name in ("X", "mask", "dt", "text", "y", "entity"):
        np.testing.assert_array_equal(getattr(out, name)[:n], getattr(view, name))
    assert list(out.entity[n:]) == [f"smote-{i}" for i in range(len(out) - n)]
    assert out.X.dtype == np.float32 and out.text.dtype == np.float32 and out.mask.dtype == bool


def test_synthetic_rows_interpolate_a_same_class_pair_on_a_real_calendar(view):
    out = sequence_smote(view, seed=0)
    for i in range(len(view), len(out)):
        assert np.all(out.X[i][~out.mask[i]] == 0), "padding must stay exactly 0"
        assert explained_by_a_pair(view, out.X[i], out.text[i], out.mask[i], out.dt[i], out.y[i]), i


def test_synthetic_values_lie_between_the_pair_per_cell(view):
    """Convex hull, cellwise: every synthetic value lies between the class's min and max."""
    out = sequence_smote(view, seed=1)
    for c in (1, 2):
        real = view.X[view.y == c]
        syn = out.X[len(view):][out.y[len(view):] == c]
        assert np.all(syn >= real.min(axis=0) - 1e-6) and np.all(syn <= real.max(axis=0) + 1e-6)


def test_deterministic_per_seed(view):
    a, b, c = sequence_smote(view, seed=5), sequence_smote(view, seed=5), sequence_smote(view, seed=6)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.text, b.text)
    assert not np.array_equal(a.X, c.X)


def test_tiny_classes_clip_k_and_a_single_member_is_copied():
    view = make_sequence_view(n=13, counts=(10, 2, 1), seed=4)
    out = sequence_smote(view, seed=0, k_neighbors=5)
    assert np.bincount(out.y).tolist() == [10, 10, 10]
    only = np.flatnonzero(view.y == 2)[0]
    copies = np.flatnonzero(out.y == 2)[1:]
    assert len(copies) == 9
    for name in ("X", "mask", "dt", "text"):
        assert np.all(getattr(out, name)[copies] == getattr(view, name)[only])


def test_a_balanced_view_is_returned_as_is():
    view = make_sequence_view(n=30, counts=(10, 10, 10))
    assert sequence_smote(view, seed=0) is view
