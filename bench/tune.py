"""``bench tune``: Optuna (TPE) on validation slices with the paper's objective.

The objective (appendix C.1-C.3, :func:`bench.metrics.objective`) is scored on the
validation slice of the training part; the test part is never taken. A trial's value is
the mean over the validation slices of several split seeds (repeated hold-out): on a panel
with few events one slice holds a handful of extended/defaulted firms, and its objective is
too noisy to tell two parameter sets apart (one slice of default simbond: 3 extended, 2
defaulted firms; there the best of 30 trials on one slice did not beat the defaults). A study lives in
an RDB (SQLite locally, PostgreSQL across hosts): a rerun resumes it and runs only the
missing trials, and several workers can share it. Each finished trial is also a nested
MLflow run under one parent per study, written by the process that ran it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

import bench
from bench import registry
from bench.adapter import View, task_threads
from bench.metrics import evaluate
from bench.protocol import load_protocol
from bench.runner import DataSpec, _context, _init_worker, _seed_data, fit_views
from bench.tracking import TAG, Tracker, git_commit, tags_for

DEFAULT_STORAGE = "sqlite:///optuna.db"
DEFAULT_SEED = 86  # the paper's first seed: its split and model seed
DEFAULT_N_SEEDS = 3  # validation slices a trial is scored on: the protocol's first seeds
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
METRIC_KEYS = ("recall", "f1", "map", "auc", "composite", "objective")


class TuneError(ValueError):
    """A tuning problem that is the user's to fix (missing study, unreachable storage, ...)."""


@dataclass(frozen=True)
class TuneResult:
    study: str
    best_value: float
    best_params: dict[str, Any]
    finished: int  # finished (complete or pruned) trials the study holds now
    ran: int  # trials this call ran
    default_value: float  # the objective of the default parameters, for comparison
    seeds: tuple[int, ...]  # the split seeds whose validation slices were scored


def default_study_name(model: str, data: DataSpec, profile: str) -> str:
    """``<model>-<dataset label>-<protocol>-<profile>``: what ``bench run --params tuned`` looks up."""
    return f"{model}-{data.label}-{load_protocol(data.protocol).name}-{profile}"


def tuning_seeds(data: DataSpec, seeds: int | list[int] | tuple[int, ...] = DEFAULT_N_SEEDS) -> tuple[int, ...]:
    """A count K = the protocol's first K seeds (what ``bench run`` starts with); a list as given."""
    if isinstance(seeds, int):
        initial = _context(data)[2].initial_seeds
        if not 1 <= seeds <= len(initial):
            raise TuneError(f"--seeds {seeds}: expected 1 to {len(initial)} (the protocol's initial seeds), "
                            "or a list like 86,127")
        return tuple(initial[:seeds])
    if not seeds:
        raise TuneError("--seeds: need at least one seed")
    return tuple(int(s) for s in seeds)


@lru_cache(maxsize=16)
def train_valid(data: DataSpec, seed: int, view: str) -> tuple[View, View]:
    """One seed's oversampled training part and its validation slice; the test part is never taken.

    These are ``run_task``'s steps before it touches the test part.
    """
    _, _, protocol = _context(data)
    if protocol.valid_size <= 0:
        raise TuneError(f"protocol '{protocol.name}' has no validation slice (valid_size = 0); "
                        "tuning needs one")
    split, prep, tab = _seed_data(data, seed)
    return fit_views(prep.view if view == "sequence" else tab, split, protocol, seed)


def _free(entry: registry.ModelEntry, params: dict[str, Any]) -> dict[str, Any]:
    """Drop what a variant fixes (e.g. an ablation switch): tuning must not undo the variant."""
    return {k: v for k, v in params.items() if k not in entry.overrides}


def _report(trial: optuna.Trial, epoch: int, score: float) -> None:
    trial.report(score, epoch)
    if trial.should_prune():
        raise optuna.TrialPruned(f"epoch {epoch}: validation score {score:.4f} below the median")


def seed_scores(data: DataSpec, model: str, overrides: dict[str, Any], profile: str = "paper",
                seed: int = DEFAULT_SEED, epoch_callback: Callable[[int, float], None] | None = None,
                ) -> dict[str, float]:
    """Fit ``overrides`` on one seed's oversampled training part, score its validation slice (``METRIC_KEYS``).

    Models with an ``epoch_callback`` attribute get ``epoch_callback``, to call with each
    epoch's validation score (higher is better); it may raise ``optuna.TrialPruned``.
    """
    entry = registry.get(model)
    train, valid = train_valid(data, seed, entry.view)
    adapter = entry.cls(seed=seed, **entry.params(profile, overrides))
    if epoch_callback is not None and hasattr(adapter, "epoch_callback"):
        adapter.epoch_callback = epoch_callback
    adapter.fit(train, valid)
    weights = dict(_context(data)[2].composite_weights)
    ev = evaluate(valid.y, adapter.predict_proba(valid), valid.class_names, weights)
    return {k: ev[k] for k in METRIC_KEYS}


def validation_scores(data: DataSpec, model: str, overrides: dict[str, Any], profile: str = "paper",
                      seeds: tuple[int, ...] = (DEFAULT_SEED,),
                      epoch_callback: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """``METRIC_KEYS`` averaged over the seeds' validation slices, plus ``per_seed`` objectives.

    Only the first seed's fit reports epochs to ``epoch_callback``: pruning compares trials
    at the same epoch of the same slice, and a pruned trial costs one fit, not ``len(seeds)``.
    """
    runs = [seed_scores(data, model, overrides, profile, s, epoch_callback if i == 0 else None)
            for i, s in enumerate(seeds)]
    mean = {k: float(np.mean([r[k] for r in runs])) for k in METRIC_KEYS}
    return {**mean, "per_seed": {str(s): r["objective"] for s, r in zip(seeds, runs, strict=True)}}


def make_objective(data: DataSpec, model: str, profile: str = "paper",
                   seeds: tuple[int, ...] = (DEFAULT_SEED,)) -> Callable[[optuna.Trial], float]:
    """Trial -> mean validation objective of the adapter's ``search_space(trial)``; deep models are pruned."""
    entry = registry.get(model)

    def objective(trial: optuna.Trial) -> float:
        overrides = _free(entry, entry.cls.search_space(trial))
        scores = validation_scores(data, model, overrides, profile, seeds, partial(_report, trial))
        trial.set_user_attr("params", overrides)
        trial.set_user_attr("per_seed_objective", scores.pop("per_seed"))
        trial.set_user_attr("metrics", scores)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        return scores["objective"]

    return objective


def open_storage(url: str, attempts: int = 4) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats, so trials of a killed worker are marked failed, not left running.

    Workers started together on an empty database race to create Optuna's tables, and the loser
    gets a database error (a duplicate key on PostgreSQL, seen in CI); database errors are retried,
    and the retry finds the tables made. Others (a bad URL, a missing driver) fail at once.
    """
    from sqlalchemy.exc import DBAPIError

    error: Exception | None = None
    for attempt in range(attempts):
        if error is not None:
            time.sleep(0.5 * attempt)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=120)
        except DBAPIError as exc:
            error = exc
        except Exception as exc:
            error = exc
            break
    raise TuneError(f"optuna storage {_masked(url)} is unusable: {type(error).__name__}: {error}") from error


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<storage url>"


def load_best_params(storage: str, study: str) -> dict[str, Any]:
    """The best trial's parameter overrides (as the adapter takes them) of an existing study."""
    store = open_storage(storage)
    try:
        loaded = optuna.load_study(study_name=study, storage=store)
    except KeyError:
        raise TuneError(f"no tuning study '{study}' in {_masked(storage)}; create it with `bench tune` "
                        "(same --dataset, --firms, --data-seed, --protocol and --profile)") from None
    if not loaded.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise TuneError(f"tuning study '{study}' has no complete trial yet; run `bench tune` on it")
    return dict(loaded.best_trial.user_attrs["params"])


def _ms(t: Any) -> int | None:
    return int(t.timestamp() * 1000) if t is not None else None


class _MlflowTrials:
    """Optuna callback: every finished trial becomes a nested MLflow run under the study's parent."""

    def __init__(self, tracker: Tracker, exp_id: str, parent_id: str, tags: dict[str, str]) -> None:
        self.tracker, self.exp_id, self.parent_id, self.tags = tracker, exp_id, parent_id, tags
        self.logged = 0  # trials this process ran

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        from mlflow.entities import Metric

        client = self.tracker.client
        tags = {"mlflow.parentRunId": self.parent_id, f"{TAG}kind": "trial", f"{TAG}trial": str(trial.number),
                f"{TAG}state": trial.state.name, f"{TAG}worker": trial.user_attrs.get("worker", ""),
                **self.tags}
        name = f"trial-{trial.number}" + ("-defaults" if trial.user_attrs.get("defaults") else "")
        rid = client.create_run(self.exp_id, start_time=_ms(trial.datetime_start), run_name=name,
                                tags=tags).info.run_id
        self.tracker.log_params(rid, trial.user_attrs.get("params") or trial.params)
        now = int(time.time() * 1000)
        scores = trial.user_attrs.get("metrics", {})
        metrics = [Metric(f"valid_{k}", float(v), now, 0) for k, v in scores.items()]
        metrics += [Metric(f"valid_objective_seed{s}", float(v), now, 0)
                    for s, v in trial.user_attrs.get("per_seed_objective", {}).items()]
        metrics += [Metric("valid_epoch_score", float(v), now, int(step))
                    for step, v in trial.intermediate_values.items()]
        if metrics:
            client.log_batch(rid, metrics=metrics)
        status = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}.get(trial.state, "FAILED")
        client.set_terminated(rid, status=status, end_time=_ms(trial.datetime_complete))
        self.logged += 1


def _parent_run(tracker: Tracker, exp_id: str, study: str, tags: dict[str, str]) -> str:
    """The study's one parent run; workers that start together all settle on the oldest."""
    filt = f"tags.`{TAG}kind` = 'study' and tags.`{TAG}study` = '{study}'"
    found, mine = tracker._search(exp_id, filt), None
    if not found:
        mine = tracker.client.create_run(exp_id, run_name=study,
                                         tags={f"{TAG}kind": "study", **tags}).info.run_id
        found = tracker._search(exp_id, filt)
    keep = min(found, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id
    if mine is not None and mine != keep:
        tracker.client.delete_run(mine)
    tracker.client.update_run(keep, status="RUNNING")
    return keep


def _settle_parent(tracker: Tracker, exp_id: str, study: str, parent: str) -> str:
    """Workers that started together may each have kept a parent of their own (one searched before
    the other had created its); afterwards all agree on the oldest: trials move under it and the
    other parents are deleted."""
    from mlflow.exceptions import MlflowException

    filt = f"tags.`{TAG}kind` = 'study' and tags.`{TAG}study` = '{study}'"
    keep = min(tracker._search(exp_id, filt), key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id
    if parent != keep:
        for kid in tracker._search(exp_id, f"tags.`mlflow.parentRunId` = '{parent}'"):
            tracker.client.set_tag(kid.info.run_id, "mlflow.parentRunId", keep)
        with contextlib.suppress(MlflowException):  # another worker may have deleted it already
            tracker.client.delete_run(parent)
    return keep


def default_trial(entry: registry.ModelEntry, profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's default parameters as a point of its search space: (params, distributions), for
    those the space can express (DT's ``max_depth=None`` is left out; TPE copes with a missing one)."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created in memory" line
    try:
        probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    finally:
        optuna.logging.set_verbosity(level)
    entry.cls.search_space(probe)
    defaults = entry.params(profile, {})
    out, dists = {}, {}
    for name, dist in probe.distributions.items():
        if name in entry.overrides or name not in defaults:
            continue
        value = defaults[name]
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            ok = value in dist.choices
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and dist.low <= value <= dist.high
        if ok:
            out[name], dists[name] = value, dist
    return out, dists


def _open_study(storage: str, name: str, attrs: dict[str, Any], sampler_seed: int) -> tuple[optuna.Study, bool]:
    """Create or resume ``name`` (and say whether this call created it); refuse a study made for
    another model, data, protocol or seeds.

    The sampler is seeded from ``sampler_seed`` and the number of trials already there, so a
    resumed study does not replay its first proposals.
    """
    store = open_storage(storage)
    try:
        study = optuna.create_study(storage=store, study_name=name, direction="maximize")
        created = True
    except optuna.exceptions.DuplicatedStudyError:  # resume it (or join the workers sharing it)
        study, created = optuna.load_study(study_name=name, storage=store), False
    clash = [f"{k} {study.user_attrs[k]!r} (asked {v!r})" for k, v in attrs.items()
             if k in study.user_attrs and study.user_attrs[k] != v]
    if clash:
        raise TuneError(f"study '{name}' was made for other settings: {', '.join(clash)}; "
                        "pick another --study")
    for k, v in attrs.items():
        study.set_user_attr(k, v)
    seed = int(np.random.SeedSequence([sampler_seed, len(study.trials)]).generate_state(1)[0])
    study.sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    return study, created


def _add_default_trial(study: optuna.Study, entry: registry.ModelEntry, profile: str,
                       scores: dict[str, Any]) -> FrozenTrial:
    """Record the defaults' (already computed) scores as a finished trial.

    TPE then starts from a known-good point, and the best trial is never worse than the defaults
    on the validation slices: if nothing beats them, ``--params tuned`` runs the defaults. Added,
    not enqueued: Optuna's waiting trials can be taken by two threads at once on SQLite (measured:
    ``--n-jobs 2`` ran the enqueued trial twice and failed with "Cannot tell a COMPLETE trial").
    """
    params, dists = default_trial(entry, profile)
    study.add_trial(optuna.trial.create_trial(
        params=params, distributions=dists, value=scores["objective"],
        user_attrs={"params": {}, "defaults": True, "per_seed_objective": scores["per_seed"],
                    "metrics": {k: scores[k] for k in METRIC_KEYS},
                    "worker": f"{socket.gethostname()}:{os.getpid()}"}))
    return next(t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("defaults"))


def tune(data: DataSpec, model: str, n_trials: int, tracker: Tracker, *, storage: str = DEFAULT_STORAGE,
         study: str | None = None, timeout: float | None = None, n_jobs: int = 1, profile: str = "paper",
         seeds: int | list[int] | tuple[int, ...] = DEFAULT_N_SEEDS, sampler_seed: int | None = None,
         command: str = "") -> TuneResult:
    """Bring the study to ``n_trials`` finished trials (a rerun adds only the missing ones).

    ``seeds`` (a count of protocol seeds, or a list) fix the splits whose validation slices
    a trial is scored on, and the models' seeds; ``sampler_seed`` (default the first seed)
    the TPE sampler. Workers sharing one study need distinct sampler seeds, else their
    first (random) proposals repeat each other.
    """
    entries = registry.resolve(model)
    if len(entries) != 1:
        raise TuneError(f"--model {model!r} selects {len(entries)} models; tune one at a time")
    entry = entries[0]
    panel, _, protocol = _context(data)
    seeds = tuning_seeds(data, seeds)
    for s in seeds:  # fail early: no validation slice, classes too small
        train_valid(data, s, entry.view)
    name = study or default_study_name(entry.key, data, profile)
    attrs = {"model": entry.key, "dataset": data.label, "data_fingerprint": panel.fingerprint(),
             "protocol": protocol.name, "protocol_hash": protocol.hash(), "profile": profile,
             "seeds": list(seeds)}
    opt, created = _open_study(storage, name, attrs, seeds[0] if sampler_seed is None else sampler_seed)

    exp_id = tracker.experiment_id(f"{data.label}/tune", kind="tune")  # not a benchmark: leaderboards skip it
    tags = tags_for({**attrs, "study": name, "synthetic": str(panel.synthetic).lower(), "git_commit": git_commit(),
                     "version": bench.__version__}.items())
    parent = _parent_run(tracker, exp_id, name, {**tags, f"{TAG}command": command})
    logger = _MlflowTrials(tracker, exp_id, parent, tags)
    _init_worker(task_threads())  # as `bench run` fits them: the validation scores match a run's
    if created or "default_value" not in opt.user_attrs:  # once per study: what tuning has to beat
        scores = validation_scores(data, entry.key, {}, profile, seeds)
        opt.set_user_attr("default_value", scores["objective"])
        if created:  # the creator only: workers sharing the study add it once
            logger(opt, _add_default_trial(opt, entry, profile, scores))
    remaining = n_trials - len(opt.get_trials(deepcopy=False, states=FINISHED))
    if remaining > 0:
        stop = optuna.study.MaxTrialsCallback(n_trials, states=FINISHED)  # other workers may fill the study
        opt.optimize(make_objective(data, entry.key, profile, seeds), n_trials=remaining, timeout=timeout,
                     n_jobs=n_jobs, callbacks=[stop, logger])
    finished = len(opt.get_trials(deepcopy=False, states=FINISHED))
    if not opt.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise TuneError(f"study '{name}' has no complete trial yet (--timeout too short?)")
    best = opt.best_trial
    opt.set_user_attr("best_params", best.user_attrs["params"])
    opt.set_user_attr("best_value", best.value)
    default = float(opt.user_attrs["default_value"])
    parent = _settle_parent(tracker, exp_id, name, parent)
    tracker.finish_parent(parent, {"best_valid_objective": best.value, "default_valid_objective": default,
                                   "finished_trials": finished})
    return TuneResult(name, float(best.value), dict(best.user_attrs["params"]), finished, logger.logged, default,
                      seeds)
