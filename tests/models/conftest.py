"""A small random-but-learnable sequence view built with numpy (independent of simbond)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.views import SequenceView

CLASSES = ("performing", "extended", "defaulted")


def make_sequence_view(n: int = 90, steps: int = 10, n_fin: int = 4, n_macro: int = 2, sections: int = 2,
                       text_dim: int = 4, counts: tuple[int, ...] | None = None, seed: int = 0) -> SequenceView:
    """End-aligned sequences of 3..``steps`` quarters with gaps of 3/6/12 months; the class shifts
    the last quarters of the first financial feature and one text dimension."""
    rng = np.random.default_rng(seed)
    counts = counts or (n - 2 * (n // 5), n // 5, n // 5)
    y = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    n, d = len(y), n_fin + n_macro
    lengths = rng.integers(3, steps + 1, size=n)
    mask = np.arange(steps)[None, :] >= (steps - lengths)[:, None]
    X = rng.normal(size=(n, steps, d)).astype(np.float32)
    X[:, -3:, 0] += 1.5 * y[:, None]
    X *= mask[..., None]
    dt = np.where(mask, rng.choice([3.0, 6.0, 12.0], size=(n, steps)), 0.0).astype(np.float32)
    dt[np.arange(n), steps - lengths] = 0.0  # first real quarter
    text = rng.normal(size=(n, sections, text_dim)).astype(np.float32)
    if sections:
        text[:, -1, 0] += y
    return SequenceView(
        X=X, mask=mask, dt=dt, text=text, y=y.astype(np.int64),
        entity=np.array([f"f{i:03d}" for i in range(n)], dtype=object),
        feature_names=tuple(f"fin{j}" for j in range(n_fin)) + tuple(f"mac{j}" for j in range(n_macro)),
        n_financial=n_fin, sections=tuple(f"sec{j}" for j in range(sections)), class_names=CLASSES[: len(counts)],
    )


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """These tiny models run fastest on one thread, and stay fast when other jobs share the cores
    (a two-thread pool spin-waits on a descheduled thread at every small kernel)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def seq_view() -> SequenceView:
    return make_sequence_view()


@pytest.fixture(scope="session")
def valid_view() -> SequenceView:
    return make_sequence_view(n=45, seed=1)
