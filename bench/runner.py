"""``bench run``: every (model, seed) is an independent task under one protocol.

The main process plans seeds (the paper's ten, then further seeds in a fixed order
until enough valid runs or the attempt cap), skips tasks MLflow already holds as
finished, hands the rest to an executor, and writes each result to MLflow as it
arrives. Workers only compute; they never touch the tracking store.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing import get_context
from typing import Any

import numpy as np
import pandas as pd

import bench
from bench import registry
from bench.adapter import THREADS_ENV, task_threads
from bench.data import load_dataset
from bench.metrics import evaluate
from bench.panel import Panel
from bench.preprocess import Prepared, prepare
from bench.protocol import Protocol, load_protocol
from bench.resample import oversample
from bench.split import Split, split_entities
from bench.stats import bootstrap_replicates
from bench.tracking import Tracker, git_commit, tags_for
from bench.views import RawSequences, SequenceView, TabularView, build_raw_sequences, tabular_from_sequence


@dataclass(frozen=True)
class DataSpec:
    """Which data: a dataset spec plus its options (``firms``, ``event_rate``, ``data_seed``)."""

    dataset: str = "simbond"
    options: tuple[tuple[str, Any], ...] = ()
    protocol: str = "paper-v1"

    @property
    def label(self) -> str:
        """Experiment/leaderboard name: the dataset plus any non-default option."""
        name = self.dataset.replace(":", "-").replace("/", "_").strip("-_") or "dataset"
        if self.dataset.startswith("panel:"):
            name = "panel-" + os.path.basename(os.path.normpath(self.dataset[6:]))
        return name + "".join(f"-{k.replace('_', '')}{v}" for k, v in self.options)

    @property
    def experiment(self) -> str:
        return f"{self.label}/{self.protocol}"


@dataclass(frozen=True)
class Task:
    data: DataSpec
    model: str
    seed: int
    params: tuple[tuple[str, Any], ...]
    config_hash: str


# --------------------------------------------------------------------------- worker side
@lru_cache(maxsize=2)
def _context(data: DataSpec) -> tuple[Panel, RawSequences, Protocol]:
    panel = load_dataset(data.dataset, **dict(data.options))
    protocol = load_protocol(data.protocol)
    raw = build_raw_sequences(panel, protocol.max_len, protocol.drop_quarters_before_event, protocol.alignment)
    return panel, raw, protocol


def split_for(raw: RawSequences, protocol: Protocol, seed: int) -> Split:
    """The seed's split; an entity's outcome is known one horizon after its last kept observation."""
    outcome = raw.last_month + 3 * (protocol.drop_quarters_before_event + 1)
    return split_entities(raw.y, protocol, seed, raw.class_names, outcome)


@lru_cache(maxsize=4)
def _seed_data(data: DataSpec, seed: int) -> tuple[Split, Prepared, TabularView]:
    _, raw, protocol = _context(data)
    split = split_for(raw, protocol, seed)
    prep = prepare(raw, split.train, protocol, seed)
    return split, prep, tabular_from_sequence(prep.view, prep.observed)


def fit_views(full: SequenceView | TabularView, split: Split, protocol: Protocol,
              seed: int) -> tuple[SequenceView | TabularView, SequenceView | TabularView]:
    """One seed's training part (oversampled as the protocol says) and validation slice; never the test part.

    Shared by ``run_task``, ``bench tune`` and ``bench explain`` so all three fit alike.
    """
    train, valid = full.take(split.train), full.take(split.valid)
    if protocol.resampling == "smote":
        train = oversample(train, seed, protocol.k_neighbors)
    return train, valid


def run_task(task: Task) -> dict[str, Any]:
    """Fit one model on one seed's split and score it on the test part. Pure computation."""
    start_ms = int(time.time() * 1000)
    _, raw, protocol = _context(task.data)
    split, prep, tab = _seed_data(task.data, task.seed)
    entry = registry.get(task.model)
    full = prep.view if entry.view == "sequence" else tab
    train, valid = fit_views(full, split, protocol, task.seed)
    test = full.take(split.test)
    model = entry.cls(seed=task.seed, **dict(task.params))
    model.fit(train, valid if len(valid) else None)
    t0 = time.perf_counter()
    proba = model.predict_proba(test)
    predict_seconds = time.perf_counter() - t0
    ev = evaluate(test.y, proba, raw.class_names, dict(protocol.composite_weights))
    boot = bootstrap_replicates(test.y, proba, seed=task.seed)
    metrics = {k: ev[k] for k in ("recall", "f1", "map", "auc", "composite", "objective")}
    metrics.update({f"recall_{c}": v for c, v in ev["per_class_recall"].items()})
    metrics.update({f"ap_{c}": v for c, v in ev["per_class_ap"].items() if np.isfinite(v)})
    metrics.update({f"text_pca_explained_variance.{sec}": v for sec, v in prep.text_explained_variance.items()})
    metrics.update(fit_seconds=model.fit_seconds_, predict_seconds=predict_seconds,
                   n_train=len(train), n_valid=len(valid), n_test=len(test))
    preds = pd.DataFrame(proba, columns=[f"p_{c}" for c in raw.class_names])
    preds.insert(0, "y_true", test.y)
    preds.insert(0, "entity", test.entity)
    buf = io.StringIO()
    preds.to_csv(buf, index=False, float_format="%.6g")
    return {
        "model": task.model, "seed": task.seed, "valid": ev["valid"], "metrics": metrics,
        "n_predicted_classes": ev["n_predicted_classes"], "confusion_matrix": ev["confusion_matrix"],
        "threads": task_threads(), "class_names": list(raw.class_names), "predictions_csv": buf.getvalue(),
        "history": model.history_, "bootstrap": boot.tolist(), "start_ms": start_ms, "end_ms": int(time.time() * 1000),
    }


def _init_worker(threads: int) -> None:
    """Limit this process's thread pools (torch, OpenMP, BLAS) to ``threads`` per model."""
    from threadpoolctl import threadpool_limits

    os.environ[THREADS_ENV] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    threadpool_limits(limits=threads)  # pools already loaded in this process ignore the variables
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- executors
class LocalExecutor:
    """``jobs == 1`` runs in this process (caches shared across models); more uses a spawn pool.

    Each task's model gets :func:`~bench.adapter.task_threads` threads (1 unless
    ``CREDIT_SEQ_BENCH_THREADS`` says otherwise), whatever ``jobs`` is: the numbers must not
    depend on how many tasks ran side by side. Size ``jobs x threads`` to the cores.
    """

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = max(1, jobs)
        self.threads = task_threads()
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalExecutor:
        if self.jobs > 1:
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=get_context("spawn"),
                                             initializer=_init_worker, initargs=(self.threads,))
        else:
            _init_worker(self.threads)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def run(self, fn: Callable[[Task], dict], tasks: Iterable[Task]) -> Iterator[tuple[Task, dict | BaseException]]:
        if self._pool is None:
            for t in tasks:
                try:
                    yield t, fn(t)
                except Exception as exc:  # recorded as a failed run, never stops the others
                    yield t, exc
            return
        futures: dict[Future, Task] = {self._pool.submit(fn, t): t for t in tasks}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for f in done:
                t = futures.pop(f)
                exc = f.exception()
                yield t, exc if exc is not None else f.result()


# --------------------------------------------------------------------------- main side
def config_hash(model: str, params: dict[str, Any], protocol: Protocol, fingerprint: str) -> str:
    blob = json.dumps({"model": model, "params": params, "protocol": protocol.hash(), "data": fingerprint},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class ModelState:
    entry: registry.ModelEntry
    params: dict[str, Any]
    config_hash: str
    parent_id: str
    done: dict[int, bool]
    tags: dict[str, str] = field(default_factory=dict)
    attempted: list[int] = field(default_factory=list)
    valid: int = 0
    failed: int = 0
    skipped: int = 0
    cursor: int = 0


@dataclass
class RunSummary:
    experiment: str
    rows: list[dict[str, Any]]
    wall_seconds: float
    executed: int
    skipped: int


def _seed_plan(seeds: int | list[int], protocol: Protocol, max_attempts: int | None) -> tuple[list[int], int]:
    """(ordered seeds to try, valid runs wanted). An explicit list is run as is, without extension."""
    if isinstance(seeds, list):
        return seeds, len(seeds)
    cap = max_attempts or max(protocol.max_attempts, seeds)
    order = protocol.seed_order()
    extra = order[-1] + 1 if order else protocol.extra_seed_start
    while len(order) < cap:
        order.append(extra)
        extra += 1
    return order[:cap], seeds


def run_benchmark(
    data: DataSpec, models: str, tracker: Tracker, *, seeds: int | list[int] = 10, profile: str = "paper",
    params: dict[str, dict[str, Any]] | None = None, executor: Any = None, max_attempts: int | None = None,
    command: str = "", progress: Callable[[str, int, int], None] | None = None,
    model_tags: dict[str, dict[str, str]] | None = None, kind: str = "benchmark",
) -> RunSummary:
    """Run ``models`` under the protocol until each has ``seeds`` valid runs (or the cap).

    ``kind`` other than ``"benchmark"`` (e.g. ``"audit"``) writes to its own experiment
    ``<dataset>/<protocol> [kind]``, which ``bench leaderboard`` does not render.
    """
    t_start = time.perf_counter()
    entries = registry.resolve(models)
    panel, raw, protocol = _context(data)
    split_for(raw, protocol, protocol.initial_seeds[0])  # fail early on tiny classes or an empty period
    fingerprint = panel.fingerprint()
    order, target = _seed_plan(seeds, protocol, max_attempts)
    exp_id = tracker.experiment_id(experiment_name(data, kind), kind=kind)
    common = {"dataset": data.label, "dataset_spec": data.dataset, "dataset_options": json.dumps(dict(data.options)),
              "protocol": protocol.name, "protocol_hash": protocol.hash(),
              "data_fingerprint": fingerprint, "synthetic": str(panel.synthetic).lower(),
              "git_commit": git_commit(), "version": bench.__version__, "profile": profile}
    states: list[ModelState] = []
    for e in entries:
        p = e.params(profile, (params or {}).get(e.key))
        h = config_hash(e.key, p, protocol, fingerprint)
        # what --params the parameters came from; the leaderboard keeps one entry per source
        extra = {"params_source": "custom", **(model_tags or {}).get(e.key, {})}
        if p == e.params(profile):  # the defaults, however they were asked for: one configuration
            extra["params_source"] = "paper"
        tags = tags_for({**common, **extra, "config_hash": h, "display_name": e.display_name, "order": e.order,
                         "group": ",".join(e.groups), "command": command}.items())
        parent = tracker.parent_run(exp_id, e.key, h, tags, {**p, **protocol.as_params()})
        states.append(ModelState(e, p, h, parent, tracker.finished_seeds(exp_id, e.key, h), extra))

    executed = skipped = 0
    total = len(states) * target
    retried: set[tuple[str, int]] = set()
    executor = executor or LocalExecutor(1)
    with executor:
        while True:
            batch: list[Task] = []
            for st in states:
                need = target - st.valid
                while need > 0 and st.cursor < len(order):
                    seed = order[st.cursor]
                    st.cursor += 1
                    st.attempted.append(seed)
                    if seed in st.done:
                        st.skipped += 1
                        skipped += 1
                        if st.done[seed]:
                            st.valid += 1
                            need -= 1
                        continue
                    batch.append(Task(data, st.entry.key, seed, tuple(sorted(st.params.items())), st.config_hash))
                    need -= 1
            if not batch:
                break
            by_key = {st.entry.key: st for st in states}
            pending = list(batch)
            while pending:
                again: list[Task] = []
                for task, out in executor.run(run_task, pending):
                    st = by_key[task.model]
                    tags = tags_for({**common, **st.tags, "config_hash": st.config_hash,
                                     "display_name": st.entry.display_name,
                                     "order": st.entry.order, "group": ",".join(st.entry.groups)}.items())
                    if isinstance(out, BaseException):
                        if (task.model, task.seed) not in retried:
                            retried.add((task.model, task.seed))
                            again.append(task)
                            continue
                        err = "".join(traceback.format_exception(out))
                        tracker.log_failed_seed(exp_id, st.parent_id, task.model, task.seed, err, tags)
                        st.failed += 1
                        msg = f"{task.model} seed {task.seed}: FAILED ({type(out).__name__}: {out})"
                    else:
                        tracker.log_seed_run(exp_id, st.parent_id, out, tags, st.params)
                        st.valid += int(out["valid"])
                        m = out["metrics"]
                        msg = (f"{task.model} seed {task.seed}: recall {m['recall']:.3f} f1 {m['f1']:.3f} "
                               f"auc {m['auc']:.3f} {'valid' if out['valid'] else 'INVALID (a class never predicted)'}")
                    executed += 1
                    if progress:
                        progress(msg, sum(min(s.valid, target) for s in states), total)
                pending = again
    wall = time.perf_counter() - t_start
    rows = []
    for st in states:
        tracker.finish_parent(st.parent_id, {"valid_runs": st.valid, "attempted_runs": len(st.attempted),
                                             "failed_runs": st.failed})
        rows.append({"model": st.entry.key, "valid": st.valid, "attempted": len(st.attempted),
                     "failed": st.failed, "skipped": st.skipped, "config_hash": st.config_hash})
    if executed:  # a rerun that only skipped finished runs keeps the real run's record
        tracker.client.set_experiment_tag(exp_id, "bench.last_command", command)
        tracker.client.set_experiment_tag(exp_id, "bench.last_wall_seconds", f"{wall:.1f}")
    tracker.client.set_experiment_tag(exp_id, "bench.version", bench.__version__)
    tracker.client.set_experiment_tag(exp_id, "bench.profile", profile)
    tracker.client.set_experiment_tag(exp_id, "bench.synthetic", str(panel.synthetic).lower())
    return RunSummary(experiment_name(data, kind), rows, wall, executed, skipped)


def compare_with_defaults(data: DataSpec, summary: RunSummary, tracker: Tracker, source: str, *,
                          profile: str = "paper", executor: Any = None, command: str = "",
                          progress: Callable[[str, int, int], None] | None = None) -> list[dict[str, Any]]:
    """Run each model of ``summary`` (a ``--params`` run from ``source``) with its default parameters on
    the same seeds, and put the two test composites side by side.

    Finished default runs are reused, as ever. Means are over each configuration's valid runs;
    the paired difference is over the seeds valid for both.
    """
    exp_id = tracker.experiment_id(summary.experiment, create=False)
    out = []
    for row in summary.rows:
        model = row["model"]
        other = tracker.seed_metrics(exp_id, model, row["config_hash"])
        if not other:
            continue
        base = run_benchmark(data, model, tracker, seeds=sorted(other), profile=profile, executor=executor,
                             command=command, progress=progress)
        default = tracker.seed_metrics(exp_id, model, base.rows[0]["config_hash"])
        valid_d = {s: m["composite"] for s, (ok, m) in default.items() if ok}
        valid_o = {s: m["composite"] for s, (ok, m) in other.items() if ok}
        both = sorted(valid_d.keys() & valid_o.keys())
        out.append({"model": model, "seeds": ",".join(map(str, sorted(other))),
                    "default test composite": _mean(valid_d.values()),
                    "default valid": f"{len(valid_d)}/{len(default)}",
                    f"{source} test composite": _mean(valid_o.values()),
                    f"{source} valid": f"{len(valid_o)}/{len(other)}",
                    "paired diff": _mean(valid_o[s] - valid_d[s] for s in both), "paired seeds": len(both)})
    return out


def _mean(values: Iterable[float]) -> float:
    v = list(values)
    return float(np.mean(v)) if v else float("nan")


def experiment_name(data: DataSpec, kind: str = "benchmark") -> str:
    return data.experiment if kind == "benchmark" else f"{data.experiment} [{kind}]"
