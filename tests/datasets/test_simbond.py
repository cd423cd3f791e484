"""simbond: paper shape, determinism, cache, ground truth, and a signal that is learnable but not trivial."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold, cross_val_predict, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer
from sklearn.tree import DecisionTreeClassifier

from bench.data import DatasetError, load_dataset
from bench.datasets import simbond
from bench.datasets._simtext import PHRASES
from bench.panel import Panel
from bench.views import build_raw_sequences

SMALL = 400


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CREDIT_SEQ_BENCH_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def small() -> Panel:
    return simbond.generate(firms=SMALL)


@pytest.fixture(scope="module")
def default() -> Panel:
    return simbond.generate()


def _cv_macro_recall(model, X: np.ndarray, y: np.ndarray) -> float:
    pred = cross_val_predict(model, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=0))
    return recall_score(y, pred, average="macro")


def _median_filled(X: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(X), np.nanmedian(X, axis=0), X)


# ---------------------------------------------------------------------------------------------- identity
def test_same_seed_same_data_other_seed_other_data(small: Panel) -> None:
    again = simbond.generate(firms=SMALL)
    assert again.fingerprint() == small.fingerprint()
    pd.testing.assert_frame_equal(again.ground_truth, small.ground_truth)
    assert simbond.generate(firms=SMALL, data_seed=1).fingerprint() != small.fingerprint()


def test_panel_is_labelled_synthetic_with_params(small: Panel) -> None:
    assert small.name == "simbond" and small.synthetic
    assert small.meta == {
        "generator_version": simbond.GENERATOR_VERSION,
        "params": {"firms": SMALL, "event_rate": simbond.DEFAULT_EVENT_RATE, "data_seed": 0},
        "synthetic": True,
    }


@pytest.mark.parametrize(
    ("firms", "event_rate", "expected"),
    [(1994, None, (24, 14)), (1000, 0.1, (63, 37)), (200, None, (4, 3)), (60, 0.01, (4, 3))],
)
def test_event_counts_keep_the_paper_ratio_and_a_floor(firms: int, event_rate: float | None,
                                                       expected: tuple[int, int]) -> None:
    assert simbond.event_counts(firms, event_rate or simbond.DEFAULT_EVENT_RATE) == expected


def test_class_counts_default_and_scaled(default: Panel, small: Panel) -> None:
    assert default.class_counts() == {"performing": 1956, "extended": 24, "defaulted": 14}
    counts = small.class_counts()
    assert sum(counts.values()) == SMALL
    assert counts["extended"] >= 3 and counts["defaulted"] >= 3
    scaled = simbond.generate(firms=600, event_rate=0.05)
    assert scaled.class_counts() == {"performing": 570, "extended": 19, "defaulted": 11}


# ---------------------------------------------------------------------------------------------- shape
def test_columns_and_periods_follow_the_paper(small: Panel) -> None:
    assert small.financial == simbond.FINANCIAL and len(set(small.financial)) == 32
    assert small.macro_columns == simbond.MACRO and len(set(small.macro_columns)) == 36
    assert {"FR", "FR (fiscal)", "FR YoY"} <= set(small.macro_columns)
    assert small.class_names == ("performing", "extended", "defaulted")
    assert small.sections == ("Important Notice", "Risk Factors")
    assert list(small.macro["period"].astype(str)) == [f"{y}Q{q}" for y in range(2015, 2025) for q in range(1, 5)]
    assert small.observations["period"].min() >= pd.Period("2015Q1", "Q")
    assert small.observations["period"].max() == pd.Period("2024Q4", "Q")
    assert {"industry", "size"} <= set(small.entities.columns)
    assert small.entities["industry"].nunique() == len(simbond.INDUSTRIES)
    assert set(small.entities["size"]) == {"small", "mid", "large"}


def test_histories_span_at_most_39_quarters(default: Panel) -> None:
    ords = pd.Series(default.observations["period"].array.asi8).groupby(default.observations["entity"].to_numpy())
    span = ords.max() - ords.min() + 1
    assert span.max() == 39  # the paper's longest history is reached, never exceeded


def test_irregular_like_real_filings(small: Panel) -> None:
    obs = small.observations.sort_values(["entity", "period"])
    quarters = obs["period"].dt.quarter.groupby(obs["entity"]).agg(set)
    n = len(quarters)
    assert 0.03 * n < (quarters == {2, 4}).sum() < 0.2 * n  # semiannual reporters
    assert 0.01 * n < (quarters == {4}).sum() < 0.12 * n  # annual reporters

    first = obs.groupby("entity")["period"].min()
    assert (first > pd.Period("2015Q2", "Q")).mean() > 0.2  # late starts

    step = pd.Series(obs["period"].array.asi8, index=obs.index).groupby(obs["entity"]).diff()
    by_firm = step.groupby(obs["entity"])
    assert (by_firm.max() > by_firm.min()).mean() > 0.1  # missed quarters

    missing = obs[list(small.financial)].isna().to_numpy().mean()
    assert 0.05 <= missing <= 0.10


def test_magnitudes_are_of_the_order_of_tables_a3_a4(default: Panel) -> None:
    fin = default.observations[list(default.financial)]
    mean = fin.mean()
    # level variables within a factor of 2 of Table A.3's means, bounded ratios close to them
    for col, paper in {"TA": 1364.08, "TD": 938.25, "MOR": 277.55, "IBD": 554.78, "NA": 426.22}.items():
        assert paper / 2 < mean[col] < paper * 2, col
    for col, paper in {"D/A": 61.35, "STD/TD": 53.92, "IBD/TIC": 47.67, "ROA": 3.34}.items():
        assert abs(mean[col] - paper) < 0.3 * paper, col
    # heavy tails: lognormal sizes and exploding ratios
    assert fin["TA"].quantile(0.99) > 20 * fin["TA"].median()
    for col in ("MOPM", "MORGR", "CR"):
        assert fin[col].abs().max() > 100 * fin[col].abs().median(), col
    macro = default.macro.set_index("period")
    for col, paper in {"GDP": 616998.90, "M2": 213234.94, "CPI": 101.63, "GDP YoY": 5.71, "EoP Rate": 6.76,
                       "FR": 3179.14, "FR (fiscal)": 12420.40, "CCI": 108.93}.items():
        assert abs(macro[col].mean() - paper) < 0.25 * abs(paper), col
    assert macro.loc[pd.Period("2020Q1", "Q"), "GDP YoY"] < -3  # the COVID shock


def test_industries_have_their_own_levels(default: Panel) -> None:
    firm = default.observations.groupby("entity")[["D/A", "TA"]].median()
    industry = default.entities.set_index("entity")["industry"]
    da = firm["D/A"].groupby(industry).median()
    assert da.max() - da.min() > 10
    assert da.idxmax() == "Real Estate"


# ---------------------------------------------------------------------------------------------- events
def test_events_fall_in_2018_2023_and_end_the_history(small: Panel) -> None:
    ent = small.entities.set_index("entity")
    event = ent["event_period"]
    assert event.isna().eq(ent["label"] == 0).all()
    years = event.dropna().dt.year
    assert years.between(2018, 2023).all()
    last = small.observations.groupby("entity")["period"].max()
    has = event.notna()
    assert (last[has.index[has]] <= event[has]).all()  # nothing observed after the event
    # performing firms mostly run to the end of the data (the paper's alignment), some stop early
    to_end = (last[~has.reindex(last.index)] == pd.Period("2024Q4", "Q")).mean()
    assert 0.7 < to_end < 0.95


def test_event_firms_keep_a_history_after_the_protocol_drop(default: Panel) -> None:
    kept = build_raw_sequences(default).mask.sum(axis=1)[default.labels > 0]
    assert kept.min() >= 1 and np.median(kept) >= 8


def test_ground_truth_matches_the_event_firms(small: Panel) -> None:
    gt = small.ground_truth
    events = small.entities.loc[small.entities["label"] > 0, "entity"]
    assert sorted(gt["entity"]) == sorted(events)
    assert set(gt["pathway"]) <= set(simbond.PATHWAYS)
    texts = small.text.groupby("entity")["text"].agg(" ".join)
    for row in gt.itertuples():
        drivers = row.drivers.split(";")
        assert drivers and set(drivers) <= set(small.financial), row
        lead = re.fullmatch(r"Q-(\d+)\.\.Q-3", row.signal_quarters)
        assert lead and 8 <= int(lead.group(1)) <= 12, row
        for phrase in filter(None, row.planted_phrases.split(";")):
            assert phrase in PHRASES and phrase in texts[row.entity].lower(), (row.entity, phrase)


def test_drivers_deviate_in_the_signal_quarters(default: Panel) -> None:
    """Per period percentile of each stressed indicator, signed by its stress direction, vs other indicators."""
    obs = default.observations
    pct = obs.groupby("period")[list(simbond.STRESS_DIRECTIONS)].rank(pct=True)
    event = default.entities.set_index("entity")["event_period"].reindex(obs["entity"]).array.asi8
    before = event - obs["period"].array.asi8
    drivers, others = [], []
    for row in default.ground_truth.itertuples():
        lead = int(re.fullmatch(r"Q-(\d+)\.\.Q-3", row.signal_quarters).group(1))
        rows = (obs["entity"] == row.entity).to_numpy() & (before >= 3) & (before <= lead)
        for col, sign in simbond.STRESS_DIRECTIONS.items():
            dev = np.nanmean(sign * (pct.loc[rows, col].to_numpy() - 0.5))
            (drivers if col in row.drivers.split(";") else others).append(dev)
    assert np.nanmean(drivers) > 0.12
    assert np.nanmean(drivers) > np.nanmean(others) + 0.04  # beyond the static tilt every event firm has


# ---------------------------------------------------------------------------------------------- text
def test_text_has_two_varied_sections_with_risk_signal(default: Panel) -> None:
    text = default.text
    assert len(text) == 2 * len(default.entities)
    assert set(text.groupby("entity")["section"].agg(tuple)) == {default.sections}
    assert text["text"].nunique() > 0.9 * len(text)
    assert text["text"].str.len().min() > 100
    label = default.entities.set_index("entity")["label"]
    gap = {}
    for section, part in text.groupby("section"):
        count = sum(part["text"].str.count(re.escape(p), flags=re.IGNORECASE) for p in PHRASES)
        by_class = count.groupby(part["entity"].map(label).to_numpy()).mean()
        assert by_class[0] > 0  # performing firms carry some risk language too
        gap[section] = min(by_class[1], by_class[2]) - by_class[0]
    assert gap["Risk Factors"] > 2 * gap["Important Notice"] > 0


# ---------------------------------------------------------------------------------------------- signal
def test_no_single_financial_indicator_is_a_shortcut(default: Panel) -> None:
    """A depth-2 tree on one indicator's last kept value (after the 2-quarter drop) stays at macro recall <= 0.6.

    Only the financial indicators are checked: the macro series' last values encode the calendar date of
    the last kept quarter, which under the paper's alignment tells performing firms (run to 2024Q4) from
    event firms. That deliberate leak is the audit's business, not a property of the planted signal.
    """
    raw = build_raw_sequences(default)
    last = _median_filled(raw.X[:, -1, :raw.n_financial])
    tree = DecisionTreeClassifier(max_depth=2, class_weight="balanced", random_state=0)
    recall = {name: _cv_macro_recall(tree, last[:, [j]], raw.y) for j, name in enumerate(default.financial)}
    assert max(recall.values()) <= 0.6, max(recall, key=recall.get)
    assert max(recall.values()) > 0.4  # individual indicators do carry some signal


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
@pytest.mark.parametrize("alignment", ["paper", "matched"])
def test_financial_signal_is_learnable(default: Panel, alignment: str) -> None:
    """Balanced LR on last + mean of the indicators beats chance (1/3) clearly.

    Under "matched" alignment performing histories are cut at event-like dates, so the calendar cannot
    help and only the planted stress can carry this (without it: about 0.35).
    """
    raw = build_raw_sequences(default, alignment=alignment)
    fin = raw.X[:, :, :raw.n_financial]
    X = _median_filled(np.concatenate([fin[:, -1], np.nanmean(fin, axis=1)], axis=1))
    model = make_pipeline(QuantileTransformer(n_quantiles=200, output_distribution="normal"),
                          LogisticRegression(class_weight="balanced", C=0.05, solver="newton-cg"))
    # 38 event firms make one 5-fold split noisy: average four repetitions
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=4, random_state=0)
    assert cross_val_score(model, X, raw.y, cv=cv, scoring="recall_macro").mean() > 0.45


# ---------------------------------------------------------------------------------------------- loading
def test_cache_round_trip_is_identical(isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset("simbond", firms=300)
    params = first.meta["params"]
    assert [p.name for p in isolated_cache.iterdir()] == [simbond.cache_dir(params).name]  # no temp leftovers

    def no_generation(_params: dict) -> Panel:
        raise AssertionError("the second load should come from the cache")

    monkeypatch.setattr(simbond, "_generate", no_generation)
    again = load_dataset("simbond", firms=300)
    assert again.fingerprint() == first.fingerprint()
    assert again.meta == first.meta
    pd.testing.assert_frame_equal(again.ground_truth, first.ground_truth)
    assert isinstance(again.entities["event_period"].dtype, pd.PeriodDtype)
    assert again.freq == "Q-DEC"


def test_cache_key_depends_on_params_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    params = {"firms": 300, "event_rate": simbond.DEFAULT_EVENT_RATE, "data_seed": 0}
    key = simbond.cache_dir(params)
    assert simbond.cache_dir({**params, "data_seed": 1}) != key
    monkeypatch.setattr(simbond, "GENERATOR_VERSION", "next")
    assert simbond.cache_dir(params) != key


def test_unknown_option_and_bad_values_are_named() -> None:
    with pytest.raises(DatasetError, match="no option 'firm'.*Did you mean 'firms'"):
        load_dataset("simbond", firm=300)
    with pytest.raises(DatasetError, match="takes no argument"):
        load_dataset("simbond:extra")
    with pytest.raises(DatasetError, match="'firms'"):
        load_dataset("simbond", firms=10)
    with pytest.raises(DatasetError, match="'event_rate'"):
        load_dataset("simbond", event_rate=1.5)
    with pytest.raises(DatasetError, match="at most half"):
        load_dataset("simbond", firms=100, event_rate=0.6)
