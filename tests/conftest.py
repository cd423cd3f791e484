"""Shared fixtures: a tiny hand-built panel (independent of simbond) and an isolated MLflow store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.panel import Panel


def pytest_configure(config: pytest.Config) -> None:
    """Keep the simbond cache of a test session out of the user's home cache."""
    import os
    import tempfile

    os.environ.setdefault("CREDIT_SEQ_BENCH_CACHE", tempfile.mkdtemp(prefix="csb-test-cache-"))


def make_panel(n: int = 90, seed: int = 0, n_fin: int = 4, n_macro: int = 2, with_text: bool = True) -> Panel:
    """Irregular quarterly panel with three classes whose last values carry signal."""
    rng = np.random.default_rng(seed)
    periods = pd.period_range("2016Q1", "2020Q4", freq="Q")
    labels = np.array([0] * (n - 2 * (n // 6)) + [1] * (n // 6) + [2] * (n // 6))
    rows, ents = [], []
    for i, y in enumerate(labels):
        start = rng.integers(0, 8)
        event = periods[-1] if y == 0 else periods[rng.integers(14, 19)]
        ps = [p for p in periods[start:] if p <= event and rng.random() > 0.1]
        if len(ps) < 6:
            ps = list(periods[start:start + 6])
        for p in ps:
            vals = rng.normal(size=n_fin) + (y * 1.5 if p >= event - 6 else 0)
            vals[rng.random(n_fin) < 0.05] = np.nan
            rows.append({"entity": f"f{i:03d}", "period": p, **{f"fin{j}": vals[j] for j in range(n_fin)}})
        ents.append({"entity": f"f{i:03d}", "label": int(y), "event_period": event if y else pd.NaT,
                     "industry": ["a", "b"][i % 2]})
    obs = pd.DataFrame(rows)
    obs["period"] = obs["period"].astype(pd.PeriodDtype("Q"))
    entities = pd.DataFrame(ents)
    entities["event_period"] = entities["event_period"].astype(pd.PeriodDtype("Q"))
    macro = pd.DataFrame({"period": periods, **{f"mac{j}": rng.normal(size=len(periods)).cumsum()
                                                for j in range(n_macro)}})
    text = None
    if with_text:
        words = ["liquidity shortfall", "refinancing pressure", "stable outlook", "strong cash position"]
        text = pd.DataFrame([
            {"entity": f"f{i:03d}", "section": sec,
             "text": " ".join(rng.choice(words, size=6)) + (" going concern" if y and sec == "Risk Factors" else "")}
            for i, y in enumerate(labels) for sec in ("Important Notice", "Risk Factors")])
    return Panel(name="tiny", entities=entities, observations=obs, class_names=("performing", "extended", "defaulted"),
                 financial=tuple(f"fin{j}" for j in range(n_fin)), macro=macro,
                 macro_columns=tuple(f"mac{j}" for j in range(n_macro)), text=text,
                 sections=("Important Notice", "Risk Factors") if with_text else (), synthetic=True)


@pytest.fixture
def tiny_panel() -> Panel:
    return make_panel()


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("CREDIT_SEQ_BENCH_CACHE", str(tmp_path / "cache"))
    return uri


# A test-only dataset source and spy model, registered once per session. Neither is in any
# group, so `--models all` never sees the spy.
from bench.adapter import ModelAdapter  # noqa: E402
from bench.data import register_dataset  # noqa: E402
from bench.registry import register  # noqa: E402

SPY_LOG: list[dict] = []


@register_dataset("tiny", description="test-only hand-built panel", synthetic=True)
def _load_tiny(arg: str | None = None, *, firms: int = 90, data_seed: int = 0) -> Panel:
    return make_panel(n=firms, seed=data_seed)


@register(groups=())
class SpyModel(ModelAdapter):
    """Records what it was trained on; predicts by nearest class mean. ``collapse_seeds`` never
    predict the last class, to exercise the validity rule and seed extension."""

    name = "spy"
    display_name = "Spy"
    view = "tabular"
    default_params = {"collapse_seeds": (), "always_collapse": False}

    def _fit(self, train, valid):
        SPY_LOG.append({"seed": self.seed, "train": set(train.entity), "valid": set(valid.entity) if valid else set()})
        self.means_ = np.stack([train.X[train.y == c].mean(axis=0) for c in range(self.n_classes_)])

    def _predict_proba(self, test):
        d = -((test.X[:, None, :] - self.means_[None]) ** 2).sum(axis=2)
        if self.params["always_collapse"] or self.seed in self.params["collapse_seeds"]:
            d[:, -1] = -np.inf
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
