"""The Dask executor on a real LocalCluster gives the same runs as the local executor.

Dask workers are fresh processes that never import ``tests/conftest.py``, so the tiny
panel travels as a panel folder (``panel:DIR``) that every process can load.
"""

import math

from distributed import LocalCluster

from bench.executors import DaskExecutor
from bench.panelio import export_panel
from bench.runner import DataSpec, LocalExecutor, run_benchmark
from bench.tracking import Tracker
from tests.conftest import make_panel

METRICS = ["recall", "f1", "map", "auc", "composite", "objective", "recall_defaulted", "n_train", "n_test"]


def _results(tracker: Tracker, folder, executor):
    data = DataSpec(f"panel:{folder}")
    summary = run_benchmark(data, "lr,dt", tracker, seeds=[86, 127], profile="quick", executor=executor)
    assert summary.executed == 4 and all(r["failed"] == 0 for r in summary.rows)
    df = tracker.results_table(tracker.experiment_id(data.experiment, create=False))
    return df.sort_values(["model", "seed"]).reset_index(drop=True)[["model", "seed", *METRICS]]


def test_dask_local_cluster_matches_local_executor(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    panel = make_panel(n=90)  # one panel in two folders: two experiments (panel-local, panel-dask)
    local = _results(tracker, export_panel(panel, tmp_path / "local"), LocalExecutor(1))
    dask = _results(tracker, export_panel(panel, tmp_path / "dask"), DaskExecutor(n_workers=2))
    assert len(local) == 4
    assert local.equals(dask)


def test_remote_scheduler_returns_failures_as_exceptions():
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as cluster, \
            DaskExecutor(scheduler=cluster.scheduler_address) as ex:
        out = dict(ex.run(math.sqrt, [4.0, -1.0, 9.0]))
    assert out[4.0] == 2.0 and out[9.0] == 3.0
    assert isinstance(out[-1.0], ValueError)
