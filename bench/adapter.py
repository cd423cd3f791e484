"""The contract every model adapter follows, and the steps they all share.

A family writes only ``_fit`` and ``_predict_proba``; the public ``fit`` /
``predict_proba`` here own seeding, class order, timing and output checks, so a new
model cannot silently return probabilities in the wrong order or of the wrong shape.
"""

from __future__ import annotations

import os
import random
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np

from bench.views import SequenceView, TabularView

View = SequenceView | TabularView


THREADS_ENV = "CREDIT_SEQ_BENCH_THREADS"


def task_threads() -> int:
    """Threads one model may use: ``CREDIT_SEQ_BENCH_THREADS``, default 1.

    Not "all cores": some kernels (K-Means, large GEMMs) sum in a thread-dependent order, so a
    model's numbers would change with the machine's cores or with ``--jobs``. Parallelism comes
    from running tasks side by side (``--jobs``, Dask workers); a user who wants threaded fits
    sets the variable, and every run records the value (tag ``bench.threads``).
    """
    return max(1, int(os.environ.get(THREADS_ENV) or 1))


def seed_everything(seed: int) -> None:
    """Seed python, numpy and (if loaded) torch, with deterministic torch kernels."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import sys

    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


class ModelAdapter(ABC):
    """Base adapter: ``fit(train, valid)`` then ``predict_proba(test)`` -> [N, C].

    Class attributes (set by each family, checked by the registry):

    * ``name``: registry key (lowercase), ``display_name``: name on leaderboards.
    * ``view``: ``"sequence"`` or ``"tabular"``; decides which view the runner builds.
    * ``default_params``: equals the constructor defaults; the config hash is built from
      the resolved parameters alone.
    * ``profiles``: parameter overrides per run profile (``quick``, ``paper``).
    """

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    view: ClassVar[Literal["sequence", "tabular"]] = "tabular"
    default_params: ClassVar[dict[str, Any]] = {}
    profiles: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, seed: int = 0, **params: Any) -> None:
        unknown = set(params) - set(self.default_params)
        if unknown:
            raise ValueError(
                f"model '{self.name}': unknown parameter(s) {sorted(unknown)}; "
                f"known: {sorted(self.default_params)}"
            )
        self.seed = seed
        self.params = {**self.default_params, **params}
        self.fit_seconds_: float | None = None
        self.history_: list[dict[str, float]] = []

    @classmethod
    def resolve_params(cls, profile: str = "paper", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults, then the profile's overrides, then the user's."""
        return {**cls.default_params, **cls.profiles.get(profile, {}), **(overrides or {})}

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        """Optuna search space; families override. Default: nothing to tune."""
        return {}

    def fit(self, train: View, valid: View | None = None) -> ModelAdapter:
        if train.kind != self.view:
            raise TypeError(f"model '{self.name}' expects a {self.view} view, got {train.kind}")
        self.classes_ = np.arange(len(train.class_names))
        self.n_classes_ = len(train.class_names)
        seed_everything(self.seed)
        t0 = time.perf_counter()
        self._fit(train, valid)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def predict_proba(self, test: View) -> np.ndarray:
        if not hasattr(self, "classes_"):
            raise RuntimeError(f"model '{self.name}' must be fitted before predict_proba")
        proba = np.asarray(self._predict_proba(test), dtype=np.float64)
        if proba.shape != (len(test), self.n_classes_):
            raise ValueError(
                f"model '{self.name}' returned probabilities of shape {proba.shape}, "
                f"expected {(len(test), self.n_classes_)}"
            )
        if not np.all(np.isfinite(proba)):
            raise ValueError(f"model '{self.name}' returned non-finite probabilities")
        proba = np.clip(proba, 0.0, None)
        sums = proba.sum(axis=1, keepdims=True)
        if np.any(np.abs(sums - 1.0) > 1e-3):
            raise ValueError(f"model '{self.name}' returned rows that do not sum to 1 (e.g. {float(sums[0, 0]):.4f})")
        return proba / sums

    def log_history(self, **row: float) -> None:
        """Record one training step's curve values (logged to MLflow per epoch by the runner)."""
        self.history_.append(row)

    @abstractmethod
    def _fit(self, train: View, valid: View | None) -> None: ...

    @abstractmethod
    def _predict_proba(self, test: View) -> np.ndarray: ...
