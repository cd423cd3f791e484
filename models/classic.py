"""The paper's classic baselines from scikit-learn: LR, SVM, DT, KNN, RF (Table 6)."""

from __future__ import annotations

from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from bench.adapter import task_threads
from bench.models._sklearn import SklearnAdapter
from bench.registry import register


@register(groups=("all", "classic"), order=10)
class LogisticRegressionModel(SklearnAdapter):
    name = "lr"
    display_name = "Logistic Regression"
    default_params = {"C": 1.0, "max_iter": 2000}

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 1e-4, 1e2, log=True)}

    def make_estimator(self) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(random_state=self.seed, **self.params))


@register(groups=("all", "classic"), order=15)
class SVMModel(SklearnAdapter):
    """RBF SVC with Platt probabilities via ``CalibratedClassifierCV(SVC(), ensemble=False)``.

    scikit-learn 1.9 deprecates ``SVC(probability=True)`` and names this as its replacement.
    """

    name = "svm"
    display_name = "SVM"
    default_params = {"C": 1.0, "gamma": "scale", "calibration_cv": 3}

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 1e-3, 1e3, log=True),
                "gamma": trial.suggest_float("gamma", 1e-5, 1e-1, log=True)}

    def make_estimator(self) -> Any:
        svc = SVC(C=self.params["C"], gamma=self.params["gamma"], random_state=self.seed)
        return make_pipeline(StandardScaler(), CalibratedClassifierCV(svc, ensemble=False,
                                                                      cv=self.params["calibration_cv"]))


@register(groups=("all", "classic"), order=20)
class DecisionTreeModel(SklearnAdapter):
    name = "dt"
    display_name = "Decision Tree"
    default_params = {"max_depth": None, "min_samples_leaf": 1}

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {"max_depth": trial.suggest_int("max_depth", 2, 20),
                "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 50, log=True)}

    def make_estimator(self) -> Any:
        return DecisionTreeClassifier(random_state=self.seed, **self.params)


@register(groups=("all", "classic"), order=30)
class KNNModel(SklearnAdapter):
    name = "knn"
    display_name = "KNN"
    default_params = {"n_neighbors": 5, "weights": "uniform"}

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {"n_neighbors": trial.suggest_int("n_neighbors", 1, 50, log=True),
                "weights": trial.suggest_categorical("weights", ["uniform", "distance"])}

    def make_estimator(self) -> Any:
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_jobs=1, **self.params))


@register(groups=("all", "classic"), order=40)
class RandomForestModel(SklearnAdapter):
    name = "rf"
    display_name = "Random Forest"
    default_params = {"n_estimators": 300, "max_depth": None, "min_samples_leaf": 1, "max_features": "sqrt"}
    profiles = {"quick": {"n_estimators": 100}}

    @classmethod
    def search_space(cls, trial: Any) -> dict[str, Any]:
        return {"n_estimators": trial.suggest_int("n_estimators", 100, 800, step=100),
                "max_depth": trial.suggest_int("max_depth", 3, 30),
                "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
                "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2"])}

    def make_estimator(self) -> Any:
        return RandomForestClassifier(random_state=self.seed, n_jobs=task_threads(), **self.params)
