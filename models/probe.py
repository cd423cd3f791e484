"""Leakage probes: models that see no firm information, only *when* a history ends.

The calendar probe is trained on the macro series' last values (which identify the
calendar quarter of the last observation) and their counts (the sequence length). A
score well above chance means the protocol's alignment lets the calendar reveal the
label (``bench audit``). Not in any group: run by name or through ``bench audit``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.adapter import task_threads
from bench.models._sklearn import SklearnAdapter
from bench.registry import register, register_variant
from bench.views import TabularView


@register(groups=(), order=300)
class CalendarProbe(SklearnAdapter):
    name = "probe"
    display_name = "Calendar probe (LR)"
    default_params = {"estimator": "lr"}

    def _columns(self, view: TabularView) -> np.ndarray:
        wanted = {f"{m}__{s}" for m in view.macro_features for s in ("last", "count")}
        if not wanted:  # no macro series: the history length is all the calendar there is
            wanted = {n for n in view.feature_names if n.endswith("__count")}
        return np.array([i for i, n in enumerate(view.feature_names) if n in wanted])

    def make_estimator(self) -> Any:
        if self.params["estimator"] == "lightgbm":
            from lightgbm import LGBMClassifier

            return LGBMClassifier(n_estimators=200, learning_rate=0.05, random_state=self.seed, n_jobs=task_threads(),
                                  deterministic=True, force_row_wise=True, verbose=-1)
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=self.seed))

    def _fit(self, train: TabularView, valid: TabularView | None) -> None:
        self.cols_ = self._columns(train)
        self.estimator_ = self.make_estimator()
        self.estimator_.fit(train.X[:, self.cols_], train.y)

    def _predict_proba(self, test: TabularView) -> np.ndarray:
        return super()._predict_proba(TabularView(X=test.X[:, self.cols_], y=test.y, entity=test.entity,
                                                  feature_names=(), class_names=test.class_names))


register_variant("probe-lightgbm", parent=CalendarProbe, display_name="Calendar probe (LightGBM)",
                 overrides={"estimator": "lightgbm"}, groups=(), order=301)
