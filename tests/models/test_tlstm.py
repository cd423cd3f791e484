"""The T-LSTM layer (eqs 1–8): exact against a literal implementation, masking, decay gate."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bench.models._layers import TimeAwareLSTM


def literal_tlstm(m: TimeAwareLSTM, x, dt, mask):
    """Eqs 1–8 step by step with autograd (gate order i, f, o, c), carrying h and c at padding."""
    b, t_len, _ = x.shape
    h = x.new_zeros(b, m.hidden_size)
    c = x.new_zeros(b, m.hidden_size)
    for t in range(t_len):
        z = x[:, t] @ m.weight_ih.t() + m.bias + h @ m.weight_hh.t()
        i, f, o, cand = z.chunk(4, dim=1)
        i, f, o, cand = i.sigmoid(), f.sigmoid(), o.sigmoid(), cand.tanh()
        decay = m.decay_gate(dt[:, t]) if m.decay is not None else 1.0  # eq 1
        c_new = f * (decay * c) + i * cand  # eqs 2, 7
        h_new = o * torch.tanh(c_new)  # eq 8
        keep = mask[:, t:t + 1]
        c, h = torch.where(keep, c_new, c), torch.where(keep, h_new, h)
    return h


def batch(b=4, t_len=6, d=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t_len + 1, (b,), generator=g)
    lengths[0] = t_len
    mask = torch.arange(t_len)[None, :] >= (t_len - lengths)[:, None]
    x = torch.randn(b, t_len, d, generator=g, dtype=dtype) * mask[..., None]
    dt = torch.randint(0, 13, (b, t_len), generator=g).to(dtype) * mask
    return x, dt, mask


@pytest.mark.parametrize("decay", [True, False])
def test_matches_the_literal_equations_and_their_gradients(decay):
    torch.manual_seed(0)
    m = TimeAwareLSTM(5, 7, decay=decay).double()
    x, dt, mask = batch()
    x.requires_grad_(True)
    fast, ref = m(x, dt, mask), literal_tlstm(m, x, dt, mask)
    torch.testing.assert_close(fast, ref)
    params = [x, *m.parameters()]
    for gf, gr in zip(torch.autograd.grad(fast.square().sum(), params),
                      torch.autograd.grad(ref.square().sum(), params), strict=True):
        torch.testing.assert_close(gf, gr)


def test_hand_written_backward_passes_gradcheck():
    torch.manual_seed(0)
    m = TimeAwareLSTM(3, 4).double()
    x, dt, mask = batch(b=3, t_len=4, d=3)
    x.requires_grad_(True)
    dt.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, dt: m(x, dt, mask), (x, dt))


def test_packed_float32_path_matches_float64():
    torch.manual_seed(0)
    m = TimeAwareLSTM(5, 512)  # wide enough for the oneDNN-packed step products
    x, dt, mask = batch(b=3, t_len=5)
    x32 = x.float().requires_grad_(True)
    out32 = m(x32, dt.float(), mask)
    grads32 = torch.autograd.grad(out32.square().sum(), [x32, *m.parameters()])
    m.double()
    x.requires_grad_(True)
    out64 = m(x, dt, mask)
    grads64 = torch.autograd.grad(out64.square().sum(), [x, *m.parameters()])
    torch.testing.assert_close(out32.double(), out64, atol=1e-5, rtol=1e-4)
    for g32, g64 in zip(grads32, grads64, strict=True):
        torch.testing.assert_close(g32.double(), g64, atol=1e-4, rtol=1e-3)


def test_without_decay_it_is_torch_lstm():
    torch.manual_seed(0)
    m, ref = TimeAwareLSTM(5, 6, decay=False), nn.LSTM(5, 6, batch_first=True)
    with torch.no_grad():  # torch orders the gates i, f, g, o; the T-LSTM i, f, o, g
        perm = torch.cat([torch.arange(0, 12), torch.arange(18, 24), torch.arange(12, 18)])
        ref.weight_ih_l0.copy_(m.weight_ih[perm.argsort()])
        ref.weight_hh_l0.copy_(m.weight_hh[perm.argsort()])
        ref.bias_ih_l0.copy_(m.bias[perm.argsort()])
        ref.bias_hh_l0.zero_()
    x = torch.randn(3, 7, 5)
    full = torch.ones(3, 7, dtype=torch.bool)
    torch.testing.assert_close(m(x, torch.zeros(3, 7), full), ref(x)[1][0][0])


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), pad=st.integers(1, 5), decay=st.booleans())
def test_prepending_padding_leaves_the_output_unchanged(seed, pad, decay):
    torch.manual_seed(seed)
    m = TimeAwareLSTM(5, 8, decay=decay)
    x, dt, mask = batch(seed=seed, dtype=torch.float32)
    b = x.shape[0]
    px = torch.cat([torch.zeros(b, pad, 5), x], 1)
    pdt = torch.cat([torch.zeros(b, pad), dt], 1)
    pmask = torch.cat([torch.zeros(b, pad, dtype=torch.bool), mask], 1)
    torch.testing.assert_close(m(px, pdt, pmask), m(x, dt, mask), atol=1e-6, rtol=1e-5)


def test_padded_steps_get_no_gradient():
    m = TimeAwareLSTM(5, 8)
    x, dt, mask = batch(dtype=torch.float32)
    x.requires_grad_(True)
    m(x, dt, mask).sum().backward()
    assert torch.all(x.grad[~mask] == 0)
    assert torch.any(x.grad[mask] != 0)


def test_decay_gate_value_follows_the_sign_of_w_t():
    m = TimeAwareLSTM(2, 3)
    dt = torch.tensor([0.0, 100.0])
    with torch.no_grad():
        m.decay.bias.zero_()
        m.decay.weight.fill_(1.0)
        retain = m.decay_gate(dt)
        m.decay.weight.fill_(-1.0)
        forget = m.decay_gate(dt)
    torch.testing.assert_close(retain[0], torch.full((3,), 0.5))
    assert torch.all(retain[1] > 0.999) and torch.all(forget[1] < 1e-3)


def two_steps(m, x1, gap):
    """Output after [x1, x2] when the second observation comes ``gap`` months later."""
    x = torch.stack([x1, torch.ones(1, 2)], 1)
    return m(x, torch.tensor([[0.0, gap]]), torch.ones(1, 2, dtype=torch.bool))


@pytest.mark.parametrize("w_t, gap, remembers", [(-1.0, 100.0, False), (-1.0, 0.0, True), (1.0, 100.0, True)])
def test_decay_gate_forgets_or_retains_the_first_observation(w_t, gap, remembers):
    torch.manual_seed(0)
    m = TimeAwareLSTM(2, 3)
    with torch.no_grad():
        m.weight_hh.zero_()  # the first step reaches the second only through the memory cell
        m.decay.weight.fill_(w_t)
        m.decay.bias.zero_()
    a, b = two_steps(m, torch.full((1, 2), 3.0), gap), two_steps(m, torch.full((1, 2), -3.0), gap)
    assert (not torch.allclose(a, b, atol=1e-4)) == remembers
    if w_t > 0:  # T_t ≈ 1: exactly the plain LSTM's memory
        plain = TimeAwareLSTM(2, 3, decay=False)
        plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("decay")})
        torch.testing.assert_close(a, two_steps(plain, torch.full((1, 2), 3.0), gap))
