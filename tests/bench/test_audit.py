"""Leakage audit: the calendar probe sees the paper alignment's leak; matched alignment removes it."""

import numpy as np
import pytest

from bench.metrics import evaluate
from bench.protocol import ProtocolError, load_protocol
from bench.registry import get
from bench.resample import oversample
from bench.runner import DataSpec, _context, _seed_data, split_for
from bench.split import SplitError


def _probe_auc(protocol: str) -> float:
    """Mean test AUC of the LightGBM calendar probe over two seeds on default-size simbond."""
    data = DataSpec("simbond", (), protocol)
    _, raw, _ = _context(data)
    aucs = []
    for seed in (86, 127):
        split, _, tab = _seed_data(data, seed)
        model = get("probe-lightgbm").make(seed).fit(oversample(tab.take(split.train), seed))
        test = tab.take(split.test)
        aucs.append(evaluate(test.y, model.predict_proba(test), raw.class_names)["auc"])
    return float(np.mean(aucs))


def test_probe_sees_the_paper_alignment_leak_and_matched_removes_it(tracking_uri):
    leak = _probe_auc("paper-v1")
    fair = _probe_auc("paper-v1+matched")
    assert leak > 0.8, leak
    assert fair < 0.65, fair


def test_matched_alignment_matches_last_dates_and_keeps_events(tracking_uri):
    paper = _context(DataSpec("simbond", (("firms", 1200),), "paper-v1"))[1]
    matched = _context(DataSpec("simbond", (("firms", 1200),), "paper-v1+matched"))[1]
    ev = paper.y > 0
    assert np.array_equal(paper.last_month[ev], matched.last_month[ev])
    assert np.array_equal(paper.X[ev], matched.X[ev], equal_nan=True)
    gap_paper = abs(np.median(paper.last_month[~ev]) - np.median(paper.last_month[ev]))
    gap_matched = abs(np.median(matched.last_month[~ev]) - np.median(matched.last_month[ev]))
    assert gap_paper >= 24 and gap_matched <= gap_paper / 4
    assert (matched.last_month <= paper.last_month).all()


def test_temporal_split_tests_on_later_outcomes(tracking_uri):
    data = DataSpec("simbond", (("firms", 1200),), "paper-v1+matched+temporal")
    _, raw, proto = _context(data)
    s = split_for(raw, proto, 86)
    outcome = raw.last_month + 9
    assert outcome[s.train].max() < outcome[s.test].min()
    assert set(raw.y[s.test]) == {0, 1, 2}
    assert 0.1 < len(s.test) / len(raw.y) < 0.3
    assert np.array_equal(s.test, split_for(raw, proto, 127).test)  # seeds vary only the validation slice


def test_temporal_split_under_paper_alignment_explains_itself(tracking_uri):
    data = DataSpec("simbond", (("firms", 1200),), "paper-v1+temporal")
    _, raw, proto = _context(data)
    with pytest.raises(SplitError, match="add '\\+matched'"):
        split_for(raw, proto, 86)


def test_unknown_modifier_is_named():
    with pytest.raises(ProtocolError, match="unknown protocol modifier '\\+shuffled'"):
        load_protocol("paper-v1+shuffled")


def test_audit_runs_stay_off_the_leaderboards(tracking_uri):
    from bench.audit import run_audit, side_by_side
    from bench.tracking import Tracker

    tracker = Tracker(tracking_uri)
    res = run_audit(DataSpec("tiny", (("firms", 90),)), "lr", tracker, seeds=1, profile="quick")
    assert {"lr", "probe"} <= set(res["model"])
    # the tiny panel has no performing firm after the temporal cut-off: that setting is reported, not run
    assert "no 'performing' entity" in res.loc[res["setting"] == "temporal", "error"].iloc[0]
    table = side_by_side(res, 3)
    assert "recall (paper)" in table.columns
    assert tracker.experiments() == []  # every audit experiment is kind=audit
