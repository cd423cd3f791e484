"""Speed of the recurrent kernels and of one EMDLOT training epoch, on CPU.

    pytest benchmarks/test_bench_tlstm.py --benchmark-json=benchmarks/results/tlstm.json

* T-LSTM forward+backward against ``torch.nn.LSTM`` of the same size (target: within 1.5x)
  at the paper's shape (39 quarters, 68 indicators, hidden 512), batch 8 and 64;
* the masked LSTM baseline's kernel (T-LSTM without decay) against ``nn.LSTM`` over
  ``pack_padded_sequence``, on end-aligned sequences of random lengths;
* one EMDLOT training epoch on ~1,600 synthetic firms x 39 quarters x 68 indicators + 2x40
  text dims, with the paper's parameters and with the quick profile.

Threads: ``CREDIT_SEQ_BENCH_THREADS``, default 1, as a fit uses them (recorded in ``extra_info``).
Minimums are the figures to compare on a shared machine; other jobs only ever add time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from bench.models._layers import SeqBatch, TimeAwareLSTM, adam, configure_torch, train_epoch
from bench.models.emdlot import EMDLOT
from bench.views import SequenceView

STEPS, FEATURES, HIDDEN = 39, 68, 512


@pytest.fixture(autouse=True)
def threads(benchmark):
    """Threads as a fit uses them (``CREDIT_SEQ_BENCH_THREADS``, default 1); recorded."""
    configure_torch()
    benchmark.extra_info["threads"] = torch.get_num_threads()


def end_aligned(batch: int, steps: int = STEPS, features: int = FEATURES, seed: int = 0, full: bool = True):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.full((batch,), steps) if full else torch.randint(4, steps + 1, (batch,), generator=g)
    mask = torch.arange(steps)[None, :] >= (steps - lengths)[:, None]
    x = torch.randn(batch, steps, features, generator=g) * mask[..., None]
    dt = torch.randint(1, 13, (batch, steps), generator=g).float() * mask
    return x, dt, mask


@pytest.mark.parametrize("batch", [8, 64])
@pytest.mark.parametrize("impl", ["tlstm", "nn.LSTM"])
def test_forward_backward(benchmark, impl, batch):
    benchmark.group = f"fwd+bwd B={batch} T={STEPS} D={FEATURES} H={HIDDEN}"
    torch.manual_seed(0)
    x, dt, mask = end_aligned(batch)
    if impl == "tlstm":
        layer = TimeAwareLSTM(FEATURES, HIDDEN)

        def step():
            layer(x, dt, mask).sum().backward()
    else:
        layer = nn.LSTM(FEATURES, HIDDEN, batch_first=True)

        def step():
            layer(x)[1][0][0].sum().backward()

    benchmark.pedantic(step, rounds=30 if batch == 8 else 10, warmup_rounds=3)


def packed_last_state(lstm: nn.LSTM, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``nn.LSTM`` on end-aligned rows: shift each to the front, pack, take ``h_n``."""
    steps = x.shape[1]
    lengths = mask.sum(1)
    idx = (torch.arange(steps)[None, :] + (steps - lengths)[:, None]) % steps
    start_aligned = x.gather(1, idx[..., None].expand_as(x))
    packed = pack_padded_sequence(start_aligned, lengths, batch_first=True, enforce_sorted=False)
    return lstm(packed)[1][0][0]


@pytest.mark.parametrize("hidden", [128, 512])
@pytest.mark.parametrize("impl", ["tlstm-no-decay", "nn.LSTM-packed"])
def test_masked_lstm_kernel(benchmark, impl, hidden):
    benchmark.group = f"masked LSTM B=32 H={hidden}, random lengths"
    torch.manual_seed(0)
    x, dt, mask = end_aligned(32, full=False)
    if impl == "tlstm-no-decay":
        layer = TimeAwareLSTM(FEATURES, hidden, decay=False)

        def step():
            layer(x, dt, mask).sum().backward()
    else:
        layer = nn.LSTM(FEATURES, hidden, batch_first=True)

        def step():
            packed_last_state(layer, x, mask).sum().backward()

    benchmark.pedantic(step, rounds=10, warmup_rounds=2)


def paper_sized_view(n: int = 1600, seed: int = 0) -> SequenceView:
    """Synthetic firms of the paper's shape: 32 financial + 36 macro indicators, 2 sections x 40."""
    rng = np.random.default_rng(seed)
    x, dt, mask = end_aligned(n, seed=seed, full=False)
    y = rng.choice(3, size=n, p=[0.34, 0.33, 0.33])
    return SequenceView(
        X=x.numpy(), mask=mask.numpy(), dt=dt.numpy(), text=rng.normal(size=(n, 2, 40)).astype(np.float32),
        y=y.astype(np.int64), entity=np.array([f"f{i}" for i in range(n)], dtype=object),
        feature_names=tuple(f"f{j}" for j in range(FEATURES)), n_financial=32, sections=("notice", "risk"),
        class_names=("performing", "extended", "defaulted"))


@pytest.mark.parametrize("profile", ["paper", "quick"])
def test_emdlot_epoch(benchmark, profile):
    benchmark.group = "EMDLOT epoch, 1600 firms x 39 x 68 + text 2x40"
    view = paper_sized_view()
    params = EMDLOT.resolve_params(profile)
    torch.manual_seed(0)
    module = EMDLOT(seed=0, **params).build_module(view)
    data = SeqBatch.from_view(view)
    optimizer = adam(module.parameters(), params["learning_rate"], params["weight_decay"])
    generator = torch.Generator().manual_seed(0)
    benchmark.extra_info.update(batch_size=params["batch_size"], hidden_size=params["hidden_size"])
    benchmark.pedantic(train_epoch, args=(module, optimizer, data, params["batch_size"], generator),
                       rounds=3 if profile == "paper" else 5, warmup_rounds=0 if profile == "paper" else 1)
