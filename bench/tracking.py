"""MLflow is the record: one experiment per dataset+protocol, a parent run per model,
a nested child run per seed. Only finished child runs count; ``bench leaderboard``
reads nothing else.

All writes go through ``MlflowClient`` from the main process, so any executor
(process pool, Dask) produces the same store.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.stats import BOOT_METRICS

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
TAG = "bench."


class TrackingError(RuntimeError):
    pass


def resolve_tracking_uri(cli_uri: str | None = None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the cwd.

    The default is what a plain ``mlflow ui`` started in the same folder reads.
    """
    return cli_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


class Tracker:
    def __init__(self, uri: str) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        if uri.startswith("sqlite:///"):
            db = Path(uri.removeprefix("sqlite:///"))
            parent = db.parent if str(db.parent) else Path(".")
            if not parent.exists() or not os.access(parent, os.W_OK):
                raise TrackingError(f"tracking store {uri}: folder '{parent}' does not exist or is not writable")
        mlflow.set_tracking_uri(uri)
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        try:
            self.client.search_experiments(max_results=1)
        except Exception as exc:
            raise TrackingError(f"tracking store {uri} is unreachable: {type(exc).__name__}: {exc}") from exc

    # ------------------------------------------------------------------ experiments
    def experiment_id(self, name: str, create: bool = True, kind: str = "benchmark") -> str | None:
        """Get or create the experiment; a process that loses the race to create it reads the winner's."""
        from mlflow.exceptions import MlflowException

        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        if not create:
            return None
        artifacts = None
        if self.uri.startswith("sqlite:///"):  # keep artifacts beside the database, not in the cwd
            root = Path(self.uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts"
            artifacts = (root / name.replace("/", "_")).as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=artifacts, tags={f"{TAG}kind": kind})
        except MlflowException:
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def experiments(self) -> list[tuple[str, str]]:
        exps = self.client.search_experiments(filter_string=f"tags.`{TAG}kind` = 'benchmark'")
        return [(e.experiment_id, e.name) for e in exps]

    # ------------------------------------------------------------------ runs
    def _search(self, exp_id: str, filt: str) -> list[Any]:
        out, token = [], None
        while True:
            page = self.client.search_runs([exp_id], filter_string=filt, max_results=1000, page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                return out

    def parent_run(self, exp_id: str, model: str, config_hash: str, tags: dict[str, str],
                   params: dict[str, Any]) -> str:
        """Reuse the parent of (model, config) if one exists, so a rerun adds no run."""
        found = self._search(exp_id, f"tags.`{TAG}kind` = 'parent' and tags.`{TAG}model` = '{model}' "
                                     f"and tags.`{TAG}config_hash` = '{config_hash}'")
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(exp_id, run_name=model, tags={
            f"{TAG}kind": "parent", f"{TAG}model": model, f"{TAG}config_hash": config_hash, **tags})
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def _seed_runs(self, exp_id: str, model: str, config_hash: str) -> list[Any]:
        """The child (per-seed) runs of (model, config), whatever their status."""
        return self._search(exp_id, f"tags.`{TAG}kind` = 'seed' and tags.`{TAG}model` = '{model}' "
                                    f"and tags.`{TAG}config_hash` = '{config_hash}'")

    def finished_seeds(self, exp_id: str, model: str, config_hash: str) -> dict[int, bool]:
        """Seed -> valid for finished child runs of (model, config); others are redone."""
        runs = self._seed_runs(exp_id, model, config_hash)
        done: dict[int, bool] = {}
        for r in runs:
            seed = int(r.data.tags[f"{TAG}seed"])
            if r.info.status == "FINISHED":
                done[seed] = r.data.tags.get(f"{TAG}valid") == "true"
            elif r.info.status == "RUNNING":  # left behind by a killed process: never counted
                self.client.set_terminated(r.info.run_id, status="KILLED")
        return done

    def seed_metrics(self, exp_id: str, model: str, config_hash: str) -> dict[int, tuple[bool, dict[str, float]]]:
        """Seed -> (valid, test metrics) of the finished child runs of (model, config)."""
        runs = self._seed_runs(exp_id, model, config_hash)
        return {int(r.data.tags[f"{TAG}seed"]): (r.data.tags.get(f"{TAG}valid") == "true",
                                                 {k: v for k, v in r.data.metrics.items() if "." not in k})
                for r in runs if r.info.status == "FINISHED"}

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, _short(v)) for k, v in sorted(params.items())]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i:i + 100])

    def log_seed_run(self, exp_id: str, parent_id: str, result: dict[str, Any], tags: dict[str, str],
                     params: dict[str, Any]) -> str:
        """Write one finished (model, seed) run in one go: a killed process leaves nothing half-done."""
        from mlflow.entities import Metric, RunTag

        run = self.client.create_run(
            exp_id, start_time=result["start_ms"], run_name=f"{result['model']}-seed{result['seed']}",
            tags={"mlflow.parentRunId": parent_id, f"{TAG}kind": "seed", f"{TAG}model": result["model"],
                  f"{TAG}seed": str(result["seed"]), f"{TAG}valid": "true" if result["valid"] else "false",
                  **tags})
        rid = run.info.run_id
        try:
            self.log_params(rid, params)
            now = int(time.time() * 1000)
            metrics = [Metric(k, float(v), now, 0) for k, v in result["metrics"].items()]
            for step, row in enumerate(result.get("history", [])):
                metrics += [Metric(f"curve.{k}", float(v), now, step) for k, v in row.items()]
            for i in range(0, len(metrics), 500):
                self.client.log_batch(rid, metrics=metrics[i:i + 500])
            self.client.log_batch(rid, tags=[RunTag(f"{TAG}n_predicted_classes", str(result["n_predicted_classes"])),
                                             RunTag(f"{TAG}threads", str(result.get("threads", "")))])
            self.client.log_dict(rid, {"labels": result["class_names"], "matrix": result["confusion_matrix"]},
                                 "confusion_matrix.json")
            self.client.log_text(rid, result["predictions_csv"], "predictions.csv")
            if "bootstrap" in result:
                self.client.log_dict(rid, {"metrics": list(BOOT_METRICS), "replicates": result["bootstrap"]},
                                     "bootstrap.json")
        except Exception:
            self.client.set_terminated(rid, status="FAILED")
            raise
        self.client.set_terminated(rid, status="FINISHED", end_time=result["end_ms"])
        return rid

    def log_failed_seed(self, exp_id: str, parent_id: str, model: str, seed: int, error: str,
                        tags: dict[str, str]) -> None:
        run = self.client.create_run(exp_id, run_name=f"{model}-seed{seed}", tags={
            "mlflow.parentRunId": parent_id, f"{TAG}kind": "seed", f"{TAG}model": model,
            f"{TAG}seed": str(seed), f"{TAG}error": error[:4000], **tags})
        self.client.set_terminated(run.info.run_id, status="FAILED")

    def finish_parent(self, parent_id: str, summary: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(parent_id, metrics=[Metric(k, float(v), now, 0) for k, v in summary.items()])
        self.client.set_terminated(parent_id, status="FINISHED")

    # ------------------------------------------------------------------ reading
    def results_table(self, exp_id: str, bootstrap: bool = False) -> pd.DataFrame:
        """One tidy row per finished (model, seed) child run of the latest config of each model and
        parameter source (``--params``).

        A model run with tuned (or file) parameters is its own entry beside the defaults, keyed
        ``<model>@<source>`` and shown as ``<name> (<source>)``, so tuning never hides the defaults'
        results. With ``bootstrap``, valid runs carry their bootstrap replicates ([B, 4] array)
        from the ``bootstrap.json`` artifact, for the leaderboard's intervals.
        """
        parents = self._search(exp_id, f"tags.`{TAG}kind` = 'parent'")
        latest: dict[tuple[str, str], Any] = {}
        for p in parents:
            key = (p.data.tags[f"{TAG}model"], p.data.tags.get(f"{TAG}params_source", "paper"))
            if key not in latest or p.info.start_time > latest[key].info.start_time:
                latest[key] = p
        rows = []
        for (model, source), parent in latest.items():
            entry = model if source == "paper" else f"{model}@{source}"
            suffix = "" if source == "paper" else f" ({source.removeprefix('file:')})"
            children = self._seed_runs(exp_id, model, parent.data.tags[f"{TAG}config_hash"])
            for r in children:
                if r.info.status != "FINISHED":
                    continue
                t = r.data.tags
                rows.append({
                    "dataset": t.get(f"{TAG}dataset", ""), "protocol": t.get(f"{TAG}protocol", ""),
                    "model": entry, "display_name": t.get(f"{TAG}display_name", model) + suffix,
                    "params_source": source,
                    "seed": int(t[f"{TAG}seed"]), "valid": t.get(f"{TAG}valid") == "true",
                    **{k: v for k, v in r.data.metrics.items() if not k.startswith("curve.")},
                    "config_hash": t.get(f"{TAG}config_hash", ""), "profile": t.get(f"{TAG}profile", ""),
                    "data_fingerprint": t.get(f"{TAG}data_fingerprint", ""),
                    "synthetic": t.get(f"{TAG}synthetic", "") == "true",
                    "git_commit": t.get(f"{TAG}git_commit", ""), "version": t.get(f"{TAG}version", ""),
                    "run_id": r.info.run_id, "order": int(t.get(f"{TAG}order", "100")),
                    "group": t.get(f"{TAG}group", ""),
                    "command": parent.data.tags.get(f"{TAG}command", ""),
                    "wall_seconds": parent.data.metrics.get("wall_seconds"),
                    "bootstrap": self._bootstrap(r) if bootstrap and t.get(f"{TAG}valid") == "true" else None,
                })
        return pd.DataFrame(rows)


    @staticmethod
    def _bootstrap(run: Any) -> np.ndarray | None:
        from mlflow.artifacts import load_dict

        try:
            data = load_dict(f"{run.info.artifact_uri}/bootstrap.json")
        except Exception:  # runs made before bootstrap logging have none: no interval, not an error
            return None
        return np.asarray(data["replicates"], dtype=float)


def _short(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s[:6000]


def tags_for(items: Iterable[tuple[str, Any]]) -> dict[str, str]:
    return {f"{TAG}{k}": str(v) for k, v in items}
