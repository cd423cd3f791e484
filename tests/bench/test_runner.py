"""End-to-end runner behaviour on the tiny test panel: MLflow layout, resume, validity, leakage."""

import numpy as np
import pytest

from bench import leaderboard
from bench.runner import DataSpec, run_benchmark, split_for
from bench.tracking import TAG, Tracker
from tests.conftest import SPY_LOG

DATA = DataSpec("tiny", (("firms", 90),))


def _children(tracker: Tracker, exp_id: str, model: str):
    return tracker._search(exp_id, f"tags.`{TAG}kind` = 'seed' and tags.`{TAG}model` = '{model}'")


def test_parent_and_child_runs_then_resume_adds_nothing(tracking_uri):
    tracker = Tracker(tracking_uri)
    s1 = run_benchmark(DATA, "lr,spy", tracker, seeds=2, profile="quick")
    exp_id = tracker.experiment_id(DATA.experiment, create=False)
    parents = tracker._search(exp_id, f"tags.`{TAG}kind` = 'parent'")
    assert sorted(p.data.tags[f"{TAG}model"] for p in parents) == ["lr", "spy"]
    for model in ("lr", "spy"):
        kids = _children(tracker, exp_id, model)
        assert len(kids) == 2 and all(k.info.status == "FINISHED" for k in kids)
        assert {k.data.tags["mlflow.parentRunId"] for k in kids} == {
            p.info.run_id for p in parents if p.data.tags[f"{TAG}model"] == model}
        assert {"recall", "f1", "map", "auc", "recall_defaulted",
                "text_pca_explained_variance.Risk Factors"} <= set(kids[0].data.metrics)
        assert kids[0].data.tags[f"{TAG}data_fingerprint"] and kids[0].data.tags[f"{TAG}config_hash"]
    assert s1.executed == 4
    s2 = run_benchmark(DATA, "lr,spy", tracker, seeds=2, profile="quick")
    assert s2.executed == 0 and s2.skipped == 4
    assert len(tracker._search(exp_id, "")) == 6  # 2 parents + 4 children, nothing added


def test_same_seed_gives_identical_metrics(tmp_path):
    out = []
    for name in ("a", "b"):
        tracker = Tracker(f"sqlite:///{tmp_path / name}.db")
        run_benchmark(DATA, "lr", tracker, seeds=[86], profile="quick")
        df = tracker.results_table(tracker.experiment_id(DATA.experiment, create=False))
        out.append(df[["recall", "f1", "map", "auc"]].to_numpy())
    assert np.array_equal(out[0], out[1])


def test_models_never_train_on_test_or_validation_entities(tracking_uri):
    SPY_LOG.clear()
    run_benchmark(DATA, "spy", Tracker(tracking_uri), seeds=[86, 127], profile="quick")
    from bench.runner import _context

    _, raw, protocol = _context(DATA)
    for rec in SPY_LOG:
        split = split_for(raw, protocol, rec["seed"])
        test_ids, valid_ids = set(raw.entity[split.test]), set(raw.entity[split.valid])
        real_train = {e for e in rec["train"] if not str(e).startswith("smote-")}
        assert real_train == set(raw.entity[split.train])
        assert not (rec["train"] & test_ids) and not (rec["train"] & valid_ids)
        assert rec["valid"] == valid_ids


def test_invalid_seeds_are_replaced_until_enough_valid_runs(tracking_uri):
    tracker = Tracker(tracking_uri)
    s = run_benchmark(DATA, "spy", tracker, seeds=3, profile="quick", params={"spy": {"collapse_seeds": (86,)}})
    row = s.rows[0]
    assert row["valid"] == 3 and row["attempted"] == 4
    exp_id = tracker.experiment_id(DATA.experiment, create=False)
    kids = _children(tracker, exp_id, "spy")
    assert sorted(int(k.data.tags[f"{TAG}seed"]) for k in kids) == [61, 71, 86, 127]
    assert {k.data.tags[f"{TAG}seed"]: k.data.tags[f"{TAG}valid"] for k in kids}["86"] == "false"


def test_model_without_valid_run_is_listed_but_unranked(tracking_uri):
    tracker = Tracker(tracking_uri)
    s = run_benchmark(DATA, "lr,spy", tracker, seeds=2, profile="quick", max_attempts=3,
                      params={"spy": {"always_collapse": True}})
    spy = next(r for r in s.rows if r["model"] == "spy")
    assert spy["valid"] == 0 and spy["attempted"] == 3
    df = tracker.results_table(tracker.experiment_id(DATA.experiment, create=False))
    lb = leaderboard.build(df)
    t7 = lb.table7()
    assert t7.iloc[-1]["Avg. rank"].startswith("unranked")
    assert lb.table6().set_index("Model").loc["Spy (custom)", "Valid/attempted"] == "0/3"  # params given


def test_a_killed_run_is_not_counted_and_is_redone(tracking_uri):
    tracker = Tracker(tracking_uri)
    run_benchmark(DATA, "lr", tracker, seeds=[86], profile="quick")
    exp_id = tracker.experiment_id(DATA.experiment, create=False)
    (kid,) = _children(tracker, exp_id, "lr")
    # simulate a process killed midway: the run is left RUNNING
    tracker.client.update_run(kid.info.run_id, status="RUNNING")
    s = run_benchmark(DATA, "lr", tracker, seeds=[86], profile="quick")
    assert s.executed == 1
    statuses = sorted(k.info.status for k in _children(tracker, exp_id, "lr"))
    assert statuses == ["FINISHED", "KILLED"]


def test_unknown_model_names_the_closest(tracking_uri):
    from bench.registry import RegistryError

    with pytest.raises(RegistryError, match="Did you mean: lightgbm"):
        run_benchmark(DATA, "lightgmb", Tracker(tracking_uri), seeds=1)


def test_tasks_run_single_threaded_unless_told(tracking_uri, monkeypatch):
    """A model's numbers must not depend on --jobs or the machine: one thread per task by default."""
    import os

    from bench.adapter import task_threads
    from bench.cli import default_jobs
    from bench.runner import LocalExecutor

    monkeypatch.delenv("CREDIT_SEQ_BENCH_THREADS", raising=False)
    assert task_threads() == 1 and LocalExecutor(4).threads == 1 and default_jobs() == (os.cpu_count() or 1)
    tracker = Tracker(tracking_uri)
    run_benchmark(DATA, "lr", tracker, seeds=[86], profile="quick")
    (kid,) = _children(tracker, tracker.experiment_id(DATA.experiment, create=False), "lr")
    assert kid.data.tags[f"{TAG}threads"] == "1"
    monkeypatch.setenv("CREDIT_SEQ_BENCH_THREADS", "3")
    assert LocalExecutor(1).threads == 3 and default_jobs() == max(1, (os.cpu_count() or 1) // 3)


def test_parameter_sources_are_separate_entries_unless_they_are_the_defaults(tracking_uri):
    tracker = Tracker(tracking_uri)
    run_benchmark(DATA, "lr", tracker, seeds=[86], profile="quick")
    run_benchmark(DATA, "lr", tracker, seeds=[86], profile="quick", params={"lr": {"C": 0.01}},
                  model_tags={"lr": {"params_source": "tuned"}})
    same = run_benchmark(DATA, "lr", tracker, seeds=[86], profile="quick", params={"lr": {"C": 1.0}},
                         model_tags={"lr": {"params_source": "tuned"}})
    assert same.executed == 0  # the defaults asked for as "tuned" are the defaults' runs
    df = tracker.results_table(tracker.experiment_id(DATA.experiment, create=False))
    assert sorted(df["model"]) == ["lr", "lr@tuned"]
    assert set(df["display_name"]) == {"Logistic Regression", "Logistic Regression (tuned)"}
    assert df.set_index("model").loc["lr", "params_source"] == "paper"
