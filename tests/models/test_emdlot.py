"""EMDLOT's parts, its ablations as configurations, the loss ambiguities, and the shared torch loop."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import registry
from bench.models._layers import EarlyStopping, SeqBatch
from bench.models.emdlot import EMDLOT, distribution_loss, separation_loss
from bench.views import SequenceView

SMALL = {"hidden_size": 16, "feature_dim": 8, "num_clusters": 3, "max_epochs": 2, "patience": 1,
         "batch_size": 32, "warmup_epochs": 1}
BASELINE_SMALL = {"hidden_size": 16, "max_epochs": 2, "patience": 1, "batch_size": 32}
VARIANTS = ("emdlot", "abl1", "abl2", "abl3", "textonly")


def net(key: str, view: SequenceView, **overrides):
    torch.manual_seed(0)
    return registry.get(key).make(seed=0, overrides={**SMALL, **overrides}).build_module(view)


def loss_of(module, batch: SeqBatch) -> torch.Tensor:
    out = module(batch)
    loss = F.nll_loss(out.log_proba, batch.y)
    return loss + out.aux_loss if out.aux_loss is not None else loss


def test_registry_entries():
    expect = {"emdlot": ("EMDLOT", ("all", "deep"), 90), "abl1": ("ABL1", ("all", "ablations"), 100),
              "abl2": ("ABL2", ("all", "ablations"), 101), "abl3": ("ABL3", ("all", "ablations"), 102),
              "textonly": ("Text-only", ("ablations",), 103), "lstm": ("LSTM", ("all", "deep"), 80),
              "ann": ("ANN", ("all", "deep"), 70)}
    for key, (display, groups, order) in expect.items():
        e = registry.get(key)
        assert (e.display_name, e.groups, e.order) == (display, groups, order)
    assert registry.get("abl1").cls is EMDLOT


def test_defaults_are_table_5():
    p = EMDLOT.default_params
    assert (p["hidden_size"], p["dropout"], p["num_clusters"], p["patience"], p["batch_size"]) == (512, 0.3, 8, 13, 8)
    assert p["learning_rate"] == pytest.approx(6.1757e-4, rel=1e-4)
    assert p["weight_decay"] == pytest.approx(1.0162e-6, rel=1e-4)
    assert (p["cluster_loss_weight"], p["dist_loss_weight"]) == (0.004, 0.035)
    assert (p["modal_temperature"], p["numeric_feature_temperature"], p["text_feature_temperature"]) == (2.6, 0.9, 0.55)


@pytest.mark.parametrize("key", ["emdlot", "lstm", "ann"])
def test_search_space_names_only_parameters(key):
    cls = registry.get(key).cls
    space = cls.search_space(optuna.create_study().ask())
    assert space and set(space) <= set(cls.default_params)


def test_attention_weights_sum_to_one_over_their_axis(seq_view):
    module = net("emdlot", seq_view).eval()
    w = module(SeqBatch.from_view(seq_view)).weights
    mask = torch.as_tensor(seq_view.mask)
    assert w["feature_financial"].shape == (90, 10, 4) and w["feature_macro"].shape == (90, 10, 2)
    for key in ("feature_financial", "feature_macro"):
        sums = w[key].sum(-1)
        torch.testing.assert_close(sums[mask], torch.ones(int(mask.sum())))
        assert torch.all(sums[~mask] == 0)
    for key, k in (("chapter", 2), ("modality", 2), ("cluster", 3)):
        assert w[key].shape == (90, k)
        torch.testing.assert_close(w[key].sum(-1), torch.ones(90))


def test_mixture_output_is_the_pi_weighted_distribution(seq_view):
    module = net("emdlot", seq_view).eval()
    batch = SeqBatch.from_view(seq_view)
    out = module(batch)
    proba = out.log_proba.exp()
    assert torch.all(proba >= 0)
    torch.testing.assert_close(proba.sum(-1), torch.ones(90))
    z, _ = module.embed(batch)
    heads = torch.softmax(torch.einsum("bd,kdc->bkc", z, module.head.weight) + module.head.bias, -1)
    torch.testing.assert_close(proba, (out.weights["cluster"].unsqueeze(-1) * heads).sum(1))


@pytest.mark.parametrize("key, overrides", [(k, {}) for k in VARIANTS] + [("emdlot", {"centroid_logits": "mlp_only"}),
                                                                         ("emdlot", {"paper_literal": True})])
def test_every_parameter_gets_a_gradient(seq_view, key, overrides):
    module = net(key, seq_view, **overrides).train()
    loss_of(module, SeqBatch.from_view(seq_view.take(np.arange(32)))).backward()
    dead = [n for n, p in module.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not dead


def top_names(module) -> set[str]:
    return {n for n, _ in module.named_parameters()}


def test_each_ablation_removes_exactly_its_part(seq_view):
    full = top_names(net("emdlot", seq_view))
    text = {n for n in full if n.startswith(("chapters.", "chapter_pool.", "modality."))}
    numeric = {n for n in full if n.startswith(("financial.", "macro.", "encoder.", "modality."))}
    attention = {"financial.pool.w", "macro.pool.w", "chapter_pool.w", "modality.w"}
    clustering = {n for n in full if n.startswith("head.")}
    assert attention <= full and "encoder.decay.weight" in full and "head.centroids" in full
    assert top_names(net("abl1", seq_view)) == full - text
    assert top_names(net("abl2", seq_view)) == (full - clustering) | {"classifier.weight", "classifier.bias"}
    assert top_names(net("abl3", seq_view)) == full - attention
    assert top_names(net("textonly", seq_view)) == full - numeric


def padded(view: SequenceView, pad: int) -> SequenceView:
    n, _, d = view.X.shape
    return SequenceView(
        X=np.concatenate([np.zeros((n, pad, d), np.float32), view.X], 1),
        mask=np.concatenate([np.zeros((n, pad), bool), view.mask], 1),
        dt=np.concatenate([np.zeros((n, pad), np.float32), view.dt], 1),
        text=view.text, y=view.y, entity=view.entity, feature_names=view.feature_names,
        n_financial=view.n_financial, sections=view.sections, class_names=view.class_names)


@settings(max_examples=5, deadline=None)
@given(pad=st.integers(1, 6), rows=st.integers(1, 40))
def test_prepending_padding_leaves_emdlot_unchanged(pad, rows):
    from tests.models.conftest import make_sequence_view

    view = make_sequence_view(n=rows + 10).take(np.arange(rows))
    module = net("emdlot", view).eval()
    a, b = module(SeqBatch.from_view(view)), module(SeqBatch.from_view(padded(view, pad)))
    torch.testing.assert_close(a.log_proba, b.log_proba, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(a.weights["feature_financial"], b.weights["feature_financial"][:, pad:])
    assert torch.all(b.weights["feature_financial"][:, :pad] == 0)


def test_distribution_loss_default_rewards_spread_and_literal_rewards_collapse():
    spread = torch.full((4, 5), 0.2)
    collapsed = F.one_hot(torch.zeros(4, dtype=torch.long), 5).float()
    assert distribution_loss(spread) < distribution_loss(collapsed)
    assert distribution_loss(spread, literal=True) > distribution_loss(collapsed, literal=True)
    torch.testing.assert_close(distribution_loss(spread), torch.tensor(0.0))
    # gradient step from a lopsided usage: the default spreads it, the literal concentrates it
    for literal, spreads in ((False, True), (True, False)):
        logits = torch.tensor([[2.0, 0.0, 0.0]], requires_grad=True)
        distribution_loss(torch.softmax(logits, -1), literal).backward()
        stepped = torch.softmax(logits - 0.5 * logits.grad, -1)
        assert (stepped[0, 0] < torch.softmax(logits, -1)[0, 0]).item() == spreads


def test_separation_loss_default_is_inverse_distance_and_literal_negative_distance():
    c = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    torch.testing.assert_close(separation_loss(c), torch.tensor(1 / (5 + 1e-3)))
    torch.testing.assert_close(separation_loss(c, literal=True), torch.tensor(-5.0))
    for literal in (False, True):  # both push centroids apart...
        assert separation_loss(2 * c, literal) < separation_loss(c, literal)
    # ...but only the literal one without bound
    assert separation_loss(100 * c) > 0
    torch.testing.assert_close(separation_loss(100 * c, literal=True), 100 * separation_loss(c, literal=True))
    assert distribution_loss(torch.ones(3, 1)) == 0 and separation_loss(torch.ones(1, 4)) == 0


def test_warm_start_sets_kmeans_centroids_and_teaches_the_cluster_net(seq_view):
    model = EMDLOT(seed=0, **{**SMALL, "warmup_epochs": 30})
    module = model.build_module(seq_view)
    before = module.head.centroids.detach().clone()
    data = SeqBatch.from_view(seq_view)
    model.warm_start(module, data, torch.Generator().manual_seed(0))
    assert not torch.equal(before, module.head.centroids) and float(module.head.distance_scale) != 1.0
    with torch.no_grad():
        module.eval()
        z, _ = module.embed(data)
        nearest = torch.cdist(z, module.head.centroids).argmin(1)
        assigned = module.head.cluster_logits(z).argmax(1)
    assert (nearest == assigned).float().mean() > 0.8


def test_early_stopping_restores_the_best_state():
    module = torch.nn.Linear(1, 1)
    stopper = EarlyStopping(patience=2)
    stops = []
    for i, score in enumerate([0.1, 0.3, 0.2, 0.25, 0.1]):
        with torch.no_grad():
            module.weight.fill_(i)
        stops.append(stopper.update(score, module))
    assert stops == [False, False, False, False, True]
    stopper.restore(module)
    assert module.weight.item() == 1.0


@pytest.mark.parametrize("key", [*VARIANTS, "lstm", "ann"])
def test_fit_is_deterministic_per_seed(seq_view, valid_view, key):
    params = BASELINE_SMALL if key in ("lstm", "ann") else SMALL

    def proba(seed):
        model = registry.get(key).make(seed=seed, overrides=params).fit(seq_view, valid_view)
        assert [set(h) for h in model.history_] == [{"epoch", "train_loss", "val_composite"}] * len(model.history_)
        return model.predict_proba(valid_view)

    first = proba(3)
    assert first.shape == (45, 3)
    np.testing.assert_array_equal(first, proba(3))
    assert not np.array_equal(first, proba(4))


def test_without_validation_it_trains_max_epochs(seq_view):
    model = EMDLOT(seed=0, **SMALL).fit(seq_view)
    assert [h["epoch"] for h in model.history_] == [1, 2] and "val_composite" not in model.history_[0]


@pytest.mark.parametrize("key, keys", [
    ("emdlot", {"feature_financial", "feature_macro", "chapter", "modality", "cluster"}),
    ("abl1", {"feature_financial", "feature_macro", "cluster"}),
    ("abl2", {"feature_financial", "feature_macro", "chapter", "modality"}),
    ("abl3", {"cluster"}),
    ("textonly", {"chapter", "cluster"}),
])
def test_explain_returns_the_weights_the_variant_has(seq_view, valid_view, key, keys):
    model = registry.get(key).make(seed=0, overrides={**SMALL, "max_epochs": 1}).fit(seq_view)
    out = model.explain(valid_view)
    assert set(out) == keys
    assert all(isinstance(v, np.ndarray) and v.shape[0] == 45 for v in out.values())


def test_a_view_without_text_runs_as_abl1():
    from tests.models.conftest import make_sequence_view

    view = make_sequence_view(n=40, sections=0)
    model = EMDLOT(seed=0, **SMALL).fit(view)
    assert set(model.explain(view)) == {"feature_financial", "feature_macro", "cluster"}
    with pytest.raises(ValueError, match="no input left"):
        registry.get("textonly").make(seed=0, overrides=SMALL).fit(view)


@pytest.mark.parametrize("key", ["emdlot", "lstm"])
def test_epoch_callback_sees_each_validation_score_and_can_stop_training(seq_view, valid_view, key):
    params = BASELINE_SMALL if key == "lstm" else SMALL
    seen: list[tuple[int, float]] = []
    model = registry.get(key).make(seed=3, overrides=params)
    model.epoch_callback = lambda epoch, score: seen.append((epoch, score))
    model.fit(seq_view, valid_view)
    assert [e for e, _ in seen] == [h["epoch"] for h in model.history_]
    assert [s for _, s in seen] == [h["val_composite"] for h in model.history_]

    class Pruned(Exception):
        pass

    def prune(epoch, score):
        raise Pruned(epoch)

    model = registry.get(key).make(seed=3, overrides=params)
    model.epoch_callback = prune
    with pytest.raises(Pruned):
        model.fit(seq_view, valid_view)
