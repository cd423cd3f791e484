"""Gradient boosting baselines through their scikit-learn APIs: LightGBM and XGBoost (``xgboost-cpu``)."""

from __future__ import annotations

from typing import Any

from bench.adapter import task_threads
from bench.models._sklearn import SklearnAdapter
from bench.registry import register

_BOOST_DEFAULTS = {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 6, "subsample": 0.8,
                   "colsample_bytree": 0.8}


def _boost_space(trial: Any) -> dict[str, Any]:
    return {"n_estimators": trial.suggest_int("n_estimators", 100, 1000, step=100),
            "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.3, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0)}


@register(groups=("all", "classic"), order=50)
class LightGBMModel(SklearnAdapter):
    name = "lightgbm"
    display_name = "LightGBM"
    requires = ("lightgbm",)
    default_params = {**_BOOST_DEFAULTS, "num_leaves": 31}
    profiles = {"quick": {"n_estimators": 100}}

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {**_boost_space(trial), "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True)}

    def make_estimator(self) -> Any:
        from lightgbm import LGBMClassifier

        return LGBMClassifier(random_state=self.seed, n_jobs=task_threads(), deterministic=True,
                              force_row_wise=True, subsample_freq=1, verbose=-1, **self.params)


@register(groups=("all", "classic"), order=60)
class XGBoostModel(SklearnAdapter):
    name = "xgboost"
    display_name = "XGBoost"
    requires = ("xgboost",)
    default_params = dict(_BOOST_DEFAULTS)
    profiles = {"quick": {"n_estimators": 100}}

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return _boost_space(trial)

    def make_estimator(self) -> Any:
        from xgboost import XGBClassifier

        return XGBClassifier(random_state=self.seed, n_jobs=task_threads(), tree_method="hist", **self.params)
