"""Shared adapter for estimators with the scikit-learn API (fit / predict_proba)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bench.adapter import ModelAdapter
from bench.views import TabularView


class SklearnAdapter(ModelAdapter):
    """Families write ``make_estimator``; fitting, class order and prediction live here once."""

    view: ClassVar[str] = "tabular"
    requires: ClassVar[tuple[str, ...]] = ()

    def make_estimator(self) -> Any:
        raise NotImplementedError

    def _fit(self, train: TabularView, valid: TabularView | None) -> None:
        self.estimator_ = self.make_estimator()
        self.estimator_.fit(train.X, train.y)

    def _predict_proba(self, test: TabularView) -> np.ndarray:
        raw = self.estimator_.predict_proba(test.X)
        out = np.zeros((len(test), self.n_classes_))
        out[:, np.asarray(self.estimator_.classes_, dtype=int)] = raw
        return out
