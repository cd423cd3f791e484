"""Two worker processes share one Optuna study on a real PostgreSQL server.

CI (``.ci/run``) starts PostgreSQL on 127.0.0.1 and sets ``CREDIT_SEQ_BENCH_PG_URL``;
without it the test is skipped.
"""

import contextlib
import multiprocessing as mp
import os
import uuid
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

PG_URL = os.environ.get("CREDIT_SEQ_BENCH_PG_URL")
DATA_OPTIONS = (("firms", 90),)
TRIALS = 6

pytestmark = pytest.mark.skipif(not PG_URL, reason="CREDIT_SEQ_BENCH_PG_URL is not set (CI starts PostgreSQL "
                                                   "and sets it; see .ci/run)")


def _worker(study: str, sampler_seed: int, mlflow_uri: str, start, results) -> None:
    """A separate ``bench tune`` process on the shared PostgreSQL study and MLflow store."""
    import tests.conftest  # noqa: F401  registers the tiny dataset in this fresh process
    from bench import tune
    from bench.runner import DataSpec
    from bench.tracking import Tracker

    data = DataSpec("tiny", DATA_OPTIONS)
    tracker = Tracker(mlflow_uri)
    tune.train_valid(data, tune.DEFAULT_SEED, "tabular")
    start.wait(timeout=120)  # both workers are warm: trials really interleave
    res = tune.tune(data, "lr", TRIALS, tracker, storage=PG_URL, study=study, profile="quick",
                    sampler_seed=sampler_seed)
    results.put((os.getpid(), res.ran))


def test_two_workers_share_one_study_without_losing_trials(tmp_path):
    from bench.tracking import TAG, Tracker

    study = f"test-shared-{uuid.uuid4().hex[:8]}"
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")  # made here, so workers skip its migrations
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(study, i, tracker.uri, start, results)) for i in range(2)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout=240)
        assert [p.exitcode for p in procs] == [0, 0]
        ran = dict(results.get(timeout=5) for _ in procs)
        trials = optuna.load_study(study_name=study, storage=PG_URL).get_trials()
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        with contextlib.suppress(KeyError):  # a worker that failed early never created it
            optuna.delete_study(study_name=study, storage=PG_URL)

    assert TRIALS <= len(trials) <= TRIALS + 1  # a worker may finish the one trial it had started
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    by_worker = Counter(int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in trials)
    assert by_worker == Counter(ran) and len(by_worker) == 2  # each worker's trials all landed
    assert len({t.params["C"] for t in trials}) == len(trials)  # distinct sampler seeds: no repeats
    exp_id = tracker.experiment_id("tiny-firms90/tune", create=False)
    (parent,) = tracker._search(exp_id, f"tags.`{TAG}kind` = 'study'")
    kids = tracker._search(exp_id, f"tags.`{TAG}kind` = 'trial'")
    assert sorted(int(k.data.tags[f"{TAG}trial"]) for k in kids) == list(range(len(trials)))
    assert {k.data.tags["mlflow.parentRunId"] for k in kids} == {parent.info.run_id}
