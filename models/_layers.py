"""Torch pieces shared by the sequence models (LSTM, ANN, EMDLOT); discovery skips this module.

* :class:`TimeAwareLSTM`: the T-LSTM of eqs 1–8 (``decay=False`` gives the plain masked LSTM),
  with a hand-written backward pass so it trains about as fast as ``torch.nn.LSTM``.
* Attention: :class:`AdditiveAttention` (eqs 10–13), :class:`ModalityAttention` (eqs 14–15),
  :class:`MeanPool` (the no-attention ablation), all returning ``(pooled, weights)``.
* :class:`SeqBatch`: a :class:`~bench.views.SequenceView` as tensors, and its minibatches.
* :class:`TorchAdapter`: the one training loop behind every torch adapter (Adam, early stopping
  on the validation slice's paper composite from :mod:`bench.metrics`, best weights restored);
  a family writes ``build_module``.

Threads: torch's intra-op pool defaults to the machine's cores. ``configure_torch`` sets it to
:func:`bench.adapter.task_threads` (``CREDIT_SEQ_BENCH_THREADS``, default 1), so a fit gives the
same numbers on any machine and under any ``--jobs``, and P parallel fits on C cores do not fight
over the same cores (which makes the many small per-step kernels of a recurrent net several
times slower).
"""

from __future__ import annotations

import copy
import math
import os
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench import metrics
from bench.adapter import ModelAdapter, task_threads
from bench.views import SequenceView

DEVICE_ENV = "CREDIT_SEQ_BENCH_DEVICE"
EVAL_BATCH = 512  # rows per forward pass when predicting (no gradients, so memory is small)
GRAD_CLIP = 5.0  # max global gradient norm; the paper is silent, recurrent nets need a guard
PACK_MIN_WIDTH = 512  # oneDNN packing measured faster from hidden 512; at 256 it is level with mm

_aten = torch.ops.aten


def configure_torch() -> torch.device:
    """Set torch's threads to :func:`~bench.adapter.task_threads` and pick the device.

    The device is ``CREDIT_SEQ_BENCH_DEVICE`` when set, else CUDA when available, else CPU.
    """
    torch.set_num_threads(task_threads())
    name = os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --------------------------------------------------------------------------- T-LSTM


def _step_matmul(weight: Tensor, rows: int) -> Callable[[Tensor], Tensor]:
    """``x -> x @ weight.T`` for the ``rows x in`` products of every time step.

    On x86 CPUs a large weight is packed once by oneDNN and reused by all steps, which is what
    keeps the small per-step GEMMs (8 rows at the paper's batch size) near ``nn.LSTM`` speed.
    Below :data:`PACK_MIN_WIDTH` the packing (and oneDNN's per-shape kernel generation) costs
    more than it saves, so small layers use plain ``mm``.
    """
    if (weight.device.type == "cpu" and weight.dtype == torch.float32 and min(weight.shape) >= PACK_MIN_WIDTH
            and torch.backends.mkldnn.is_available()):
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, rows)
        return lambda x: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
    wt = weight.t()
    return lambda x: x @ wt


class _TLSTMFunction(torch.autograd.Function):
    """The masked T-LSTM recurrence with a hand-written backward pass (BPTT).

    Autograd through a Python loop records ~15 nodes per step and accumulates the recurrent
    weight's gradient step by step (a full ``H x 4H`` write per step); here the backward loop
    only propagates ``dh``/``dc`` and the weight gradient is one matmul over all steps.

    Inputs are time-major: ``xp`` [T,B,4H] input projections (gate order i, f, o, g),
    ``decay`` [T,B,H] decay gates or ``None``, ``mask`` [T,B] bool, ``weight_hh`` [4H,H].
    Returns the hidden state after the last step [B,H]; masked steps carry ``h`` and ``c``.
    """

    @staticmethod
    def forward(ctx: Any, xp: Tensor, decay: Tensor | None, mask: Tensor, weight_hh: Tensor) -> Tensor:
        T, B, G = xp.shape
        H = G // 4
        full = mask.all(1).tolist()
        valid = mask.any(1).tolist()
        start = valid.index(True) if True in valid else T  # leading all-padding steps leave h = c = 0
        h_all = xp.new_zeros(T + 1, B, H)  # h_all[t] = h_{t-1}
        c_all = xp.new_zeros(T + 1, B, H)  # c_all[t] = c_{t-1}, before decay
        gates = xp.new_empty(T, B, G)  # activated gates; like the two below, read only from `start`
        tanh_c = xp.new_empty(T, B, H)
        decayed = xp.new_empty(T, B, H) if decay is not None else c_all[:T]  # T_t ⊙ c_{t-1}
        step = _step_matmul(weight_hh, B)
        keep = mask.unsqueeze(-1)
        for t in range(start, T):
            g = torch.add(xp[t], step(h_all[t]), out=gates[t])
            g[:, : 3 * H].sigmoid_()
            g[:, 3 * H:].tanh_()
            i, f, o, cand = g.chunk(4, 1)
            if decay is not None:
                torch.mul(c_all[t], decay[t], out=decayed[t])  # eq 2
            if full[t]:
                c_new = torch.addcmul(i * cand, f, decayed[t], out=c_all[t + 1])  # eq 7
                torch.mul(o, torch.tanh(c_new, out=tanh_c[t]), out=h_all[t + 1])  # eq 8
            else:
                c_new = torch.addcmul(i * cand, f, decayed[t])
                h_new = o * torch.tanh(c_new, out=tanh_c[t])
                torch.where(keep[t], c_new, c_all[t], out=c_all[t + 1])
                torch.where(keep[t], h_new, h_all[t], out=h_all[t + 1])
        ctx.save_for_backward(h_all, c_all, gates, tanh_c, decayed, decay, mask, weight_hh)
        ctx.start, ctx.full = start, full
        return h_all[T]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dh: Tensor) -> tuple[Tensor | None, ...]:
        h_all, c_all, gates, tanh_c, decayed, decay, mask, weight_hh = ctx.saved_tensors
        start, full = ctx.start, ctx.full
        T, B, G = gates.shape
        H = G // 4
        d_gates = torch.empty_like(gates)  # every step from `start` is written below
        d_gates[:start] = 0
        d_decay = None
        if decay is not None and ctx.needs_input_grad[1]:
            d_decay = torch.empty_like(decay)
            d_decay[:start] = 0
        step = _step_matmul(weight_hh.t(), B)  # x -> x @ weight_hh
        keep = mask.unsqueeze(-1)
        dh = dh.contiguous()
        dc = torch.zeros_like(dh)
        for t in range(T - 1, start - 1, -1):
            g = gates[t]
            i, f, o, cand = g.chunk(4, 1)
            dg = d_gates[t]
            di, df, do, dcand = dg.chunk(4, 1)
            torch.mul(dh, tanh_c[t], out=do)
            dc_new = dc + _aten.tanh_backward(dh * o, tanh_c[t])
            torch.mul(dc_new, cand, out=di)
            _aten.tanh_backward.grad_input(dc_new * i, cand, grad_input=dcand)
            torch.mul(dc_new, decayed[t], out=df)
            dc_prev = dc_new * f
            if decay is not None:
                if d_decay is not None:
                    torch.mul(dc_prev, c_all[t], out=d_decay[t])
                dc_prev = dc_prev * decay[t]
            _aten.sigmoid_backward.grad_input(dg[:, : 3 * H], g[:, : 3 * H], grad_input=dg[:, : 3 * H])
            if full[t]:
                dh, dc = step(dg), dc_prev
            else:
                dg.mul_(keep[t])
                if d_decay is not None:
                    d_decay[t].mul_(keep[t])
                dh = torch.where(keep[t], step(dg), dh)
                dc = torch.where(keep[t], dc_prev, dc)
        d_weight = None
        if ctx.needs_input_grad[3]:
            d_weight = d_gates[start:].reshape(-1, G).t() @ h_all[start:T].reshape(-1, H)
        return d_gates, d_decay, None, d_weight


class TimeAwareLSTM(nn.Module):
    """T-LSTM (eqs 1–8) over end-aligned, masked sequences; returns the last hidden state.

    Departures from the paper's equations, on purpose:

    * the gates carry biases (eqs 3–6 write none; every LSTM implementation has them);
    * masked (padded) steps carry ``h`` and ``c`` unchanged, so prepending padding leaves the
      output unchanged, and with end alignment the last step is the last real observation;
    * ``decay=False`` drops eqs 1–2 (``T_t = 1``): the plain masked LSTM baseline, same kernel.

    The decay gate starts near 1 (bias 3, small negative weight per month of gap), i.e. close
    to a plain LSTM, and learns how fast each unit forgets across long gaps.
    """

    def __init__(self, input_size: int, hidden_size: int, decay: bool = True) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        # W_i, W_f, W_o, W_c stacked (i, f, o, g: one sigmoid covers the first three)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))  # U_i, U_f, U_o, U_c
        self.decay = nn.Linear(1, hidden_size) if decay else None  # W_T ∈ R^{h×1}, b_T
        bound = 1.0 / math.sqrt(hidden_size)
        for p in (self.weight_ih, self.bias, self.weight_hh):
            nn.init.uniform_(p, -bound, bound)
        if self.decay is not None:
            nn.init.uniform_(self.decay.weight, -0.1, 0.0)
            nn.init.constant_(self.decay.bias, 3.0)

    def decay_gate(self, dt: Tensor) -> Tensor:
        """Eq 1: ``T_t = σ(W_T Δt + b_T)`` for Δt in months, shape ``dt.shape + (H,)``."""
        return torch.sigmoid(self.decay(dt.unsqueeze(-1)))

    def forward(self, x: Tensor, dt: Tensor, mask: Tensor) -> Tensor:
        """``x`` [B,T,D], ``dt`` [B,T], ``mask`` [B,T] -> last hidden state [B,H]."""
        xp = F.linear(x.transpose(0, 1), self.weight_ih, self.bias)  # all steps, all gates: one matmul
        decay = self.decay_gate(dt.t()) if self.decay is not None else None
        return _TLSTMFunction.apply(xp, decay, mask.t().contiguous(), self.weight_hh)


# --------------------------------------------------------------------------- attention


class AdditiveAttention(nn.Module):
    """Eqs 10–13: ``α = softmax(wᵀ tanh(f) / τ)`` over the second-to-last axis, then ``Σ α f``.

    ``w`` starts at zero, i.e. at mean pooling, and learns to move away from it.
    """

    def __init__(self, dim: int, temperature: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(dim))
        self.temperature = temperature

    def forward(self, f: Tensor) -> tuple[Tensor, Tensor]:
        """``f`` [..., n, d] -> (pooled [..., d], weights [..., n])."""
        alpha = torch.softmax(torch.tanh(f) @ self.w / self.temperature, dim=-1)
        return (alpha.unsqueeze(-1) * f).sum(-2), alpha


class ModalityAttention(nn.Module):
    """Eqs 14–15: ``β_m = softmax_m(w_mᵀ z_m / τ)`` with one projection vector per modality."""

    def __init__(self, dim: int, n_modalities: int, temperature: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n_modalities, dim))
        self.temperature = temperature

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z`` [B, M, d] -> (fused [B, d], weights [B, M])."""
        beta = torch.softmax((z * self.w).sum(-1) / self.temperature, dim=-1)
        return (beta.unsqueeze(-1) * z).sum(-2), beta


class MeanPool(nn.Module):
    """The no-attention ablation (ABL3): the plain mean where an attention module would pool."""

    def forward(self, f: Tensor) -> tuple[Tensor, None]:
        return f.mean(-2), None


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SeqBatch:
    """Tensors of a :class:`~bench.views.SequenceView` (same names and shapes), on one device."""

    x: Tensor
    mask: Tensor
    dt: Tensor
    text: Tensor
    y: Tensor

    @classmethod
    def from_view(cls, view: SequenceView, device: torch.device | str = "cpu") -> SeqBatch:
        def t(a: np.ndarray, dtype: torch.dtype) -> Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        return cls(x=t(view.X, torch.float32), mask=t(view.mask, torch.bool), dt=t(view.dt, torch.float32),
                   text=t(view.text, torch.float32), y=t(view.y, torch.long))

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: Tensor) -> SeqBatch:
        return SeqBatch(x=self.x[idx], mask=self.mask[idx], dt=self.dt[idx], text=self.text[idx], y=self.y[idx])

    def batches(self, size: int, generator: torch.Generator | None = None) -> Iterator[SeqBatch]:
        """Minibatches in order, or shuffled by ``generator`` (a seeded CPU generator)."""
        for idx in minibatches(len(self), size, generator, self.y.device):
            yield self.take(idx)


def minibatches(n: int, size: int, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> Iterator[Tensor]:
    """Row indices of consecutive minibatches, shuffled when a (seeded, CPU) ``generator`` is given."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    order = order.to(device)
    for s in range(0, n, size):
        yield order[s:s + size]


@dataclass
class ModuleOutput:
    """What a sequence classifier returns: class log-probabilities, an optional auxiliary loss
    (training only) and named attention/assignment weights (first axis = rows)."""

    log_proba: Tensor
    aux_loss: Tensor | None = None
    weights: dict[str, Tensor] = field(default_factory=dict)


class SequenceClassifier(nn.Module):
    """An ``nn.Module`` mapping a :class:`SeqBatch` to a :class:`ModuleOutput`."""

    @abstractmethod
    def forward(self, batch: SeqBatch) -> ModuleOutput: ...


# --------------------------------------------------------------------------- training


class EarlyStopping:
    """Keep the best state seen (higher score is better); stop after ``patience`` epochs without gain."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = -math.inf
        self.best_state: dict[str, Tensor] | None = None
        self.stale = 0

    def update(self, score: float, module: nn.Module) -> bool:
        """Record one epoch's score; True when training should stop."""
        if score > self.best:
            self.best, self.stale = score, 0
            self.best_state = copy.deepcopy(module.state_dict())
        else:
            self.stale += 1
        return self.stale > self.patience

    def restore(self, module: nn.Module) -> None:
        if self.best_state is not None:
            module.load_state_dict(self.best_state)


def adam(parameters: Iterator[nn.Parameter], learning_rate: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with L2 weight decay, fused: one kernel for all parameters, ~6x faster per step on CPU
    than the per-tensor loop torch picks there by default."""
    return torch.optim.Adam(parameters, lr=learning_rate, weight_decay=weight_decay, fused=True)


def train_epoch(module: SequenceClassifier, optimizer: torch.optim.Optimizer, data: SeqBatch,
                batch_size: int, generator: torch.Generator) -> float:
    """One pass over shuffled minibatches; returns the mean training loss (NLL + auxiliary)."""
    module.train()
    total, n = 0.0, 0
    for batch in data.batches(batch_size, generator):
        out = module(batch)
        loss = F.nll_loss(out.log_proba, batch.y)
        if out.aux_loss is not None:
            loss = loss + out.aux_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(module.parameters(), GRAD_CLIP)
        optimizer.step()
        total += float(loss.detach()) * len(batch)
        n += len(batch)
    return total / max(n, 1)


@torch.no_grad()
def forward_all(module: SequenceClassifier, data: SeqBatch) -> ModuleOutput:
    """Eval-mode forward over all rows in batches of :data:`EVAL_BATCH`, outputs concatenated."""
    module.eval()
    outs = [module(b) for b in data.batches(EVAL_BATCH)]
    return ModuleOutput(
        log_proba=torch.cat([o.log_proba for o in outs]),
        weights={k: torch.cat([o.weights[k] for o in outs]) for k in outs[0].weights},
    )


def suggest_training(trial: Any) -> dict[str, Any]:
    """Search ranges shared by the torch models (paper Table 5's training rows)."""
    return {
        "dropout": trial.suggest_float("dropout", 0.1, 0.7, step=0.1),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
        "patience": trial.suggest_int("patience", 5, 20),
        "batch_size": trial.suggest_categorical("batch_size", [8, 16, 32]),
    }


class TorchAdapter(ModelAdapter):
    """Adapter base for torch sequence models: owns the training loop, prediction and ``explain``.

    A family sets its parameters and writes :meth:`build_module`; EMDLOT also overrides
    :meth:`warm_start`. Parameters every family has: ``learning_rate``, ``weight_decay``,
    ``batch_size``, ``max_epochs``, ``patience``.
    """

    view = "sequence"
    #: Set by ``bench tune`` on the instance: called with (epoch, validation composite) after each
    #: epoch so Optuna can prune; may raise ``optuna.TrialPruned``. An attribute, not a parameter,
    #: so it never enters the configuration hash.
    epoch_callback: Callable[[int, float], None] | None = None

    @abstractmethod
    def build_module(self, train: SequenceView) -> SequenceClassifier:
        """A freshly initialised network sized for ``train`` (called after seeding)."""

    def warm_start(self, module: SequenceClassifier, data: SeqBatch, generator: torch.Generator) -> None:
        """Hook run once before the first epoch (default: nothing)."""

    def _fit(self, train: SequenceView, valid: SequenceView | None) -> None:
        p = self.params
        device = configure_torch()
        data = SeqBatch.from_view(train, device)
        val = SeqBatch.from_view(valid, device) if valid is not None and len(valid) else None
        generator = torch.Generator().manual_seed(self.seed)
        module = self.build_module(train).to(device)
        self.warm_start(module, data, generator)
        optimizer = adam(module.parameters(), p["learning_rate"], p["weight_decay"])
        stopper = EarlyStopping(p["patience"])
        for epoch in range(1, p["max_epochs"] + 1):
            loss = train_epoch(module, optimizer, data, p["batch_size"], generator)
            if val is None:
                self.log_history(epoch=epoch, train_loss=loss)
                continue
            proba = forward_all(module, val).log_proba.exp().cpu().numpy()
            score = metrics.evaluate(valid.y, proba, valid.class_names)["composite"]
            self.log_history(epoch=epoch, train_loss=loss, val_composite=score)
            if self.epoch_callback is not None:
                self.epoch_callback(epoch, score)
            if stopper.update(score, module):
                break
        stopper.restore(module)
        module.eval()
        self.module_, self.device_ = module, device

    def _predict_proba(self, test: SequenceView) -> np.ndarray:
        return forward_all(self.module_, SeqBatch.from_view(test, self.device_)).log_proba.exp().cpu().numpy()

    def explain(self, view: SequenceView) -> dict[str, np.ndarray]:
        """The fitted network's attention and cluster weights on ``view`` (keys: see the family)."""
        if not hasattr(self, "module_"):
            raise RuntimeError(f"model '{self.name}' must be fitted before explain")
        out = forward_all(self.module_, SeqBatch.from_view(view, self.device_))
        return {k: v.cpu().numpy() for k, v in out.weights.items()}
