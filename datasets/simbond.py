"""simbond: the embedded default dataset, a seeded simulator shaped like the EMDLOT bond panel.

The paper's Wind data is proprietary, so the default dataset is simulated to the shape the paper reports
(section 4, Tables 2-4, Appendix A): 1,994 bond issuers observed quarterly 2015Q1-2024Q4, at most 39
quarters each, 24 extended and 14 defaulted. Every number it produces is synthetic.

Columns
    ``observations`` carries the 32 financial indicators of Table A.1 under their abbreviations
    (:data:`FINANCIAL`), ``macro`` the 36 series of Table A.2 (:data:`MACRO`). Table A.2 uses "FR" twice:
    here "FR" is official foreign exchange reserves (its first use) and "FR (fiscal)" is fiscal revenue;
    "FR YoY" keeps its name and is fiscal revenue growth. Units follow the Wind conventions behind Tables
    A.3/A.4: money in 100 million CNY, income and cash-flow items (and GDP, trade, fiscal series)
    year-to-date cumulative, which gives them the strong Q4 seasonality the paper's Figures 4-5 show.
    ``entities`` adds ``industry`` (6 groups with their own levels) and ``size`` (small/mid/large).

How it is made
    Firms draw static traits (size, leverage, liquidity, profitability, growth; correlated, with industry
    levels) plus AR(1) quarterly deviations; indicators are derived from them through balance-sheet and
    income identities (TD = D/A x TA, ND = IBD - MA, EBIT = MOP + other, ...), with noise, heavy tails
    (lognormal size, ratios of small denominators, rare extreme outliers) and the macro growth cycle.
    The macro table is one path driven by growth (with the 2020Q1 shock), credit, price and trade factors.
    Irregularity: late starts, missed quarters, semiannual (Q2/Q4) and annual (Q4) reporters, missing
    cells. Performing firms mostly run to 2024Q4 and event firms stop at their event quarter: the paper's
    alignment, whose calendar leak the suite's audit measures.

Where the signal is
    Event firms are drawn with a mild tilt towards risky static traits and get event quarters in 2018-2023
    from one profile shared by both event classes (dates alone do not tell extended from defaulted). Each
    then follows one latent pathway:
    ``liquidity`` (mostly extended: cash, current ratios, short-term debt share, operating and financing
    cash flows), ``leverage`` (mostly defaulted: D/A, IBD/TIC, interest coverage, EBITDA), ``profitability``
    or ``mixed``. A pathway moves a random subset of its stress knobs (:data:`KNOBS`), ramping up from
    8-12 quarters before the event, so it is visible in the quarters the protocol keeps (Q-L..Q-3). Some
    performing firms go through a temporary stress episode of the same kind (near misses). The prospectus
    text (:mod:`bench.datasets._simtext`) plants risk phrases following the same latent risk.
    ``ground_truth`` lists, per event firm, the pathway, the indicators its knobs moved, the signal
    quarters and the planted phrases: the answer key for explanation checks.

Loading caches the panel as parquet under ``${CREDIT_SEQ_BENCH_CACHE:-~/.cache/credit-seq-bench}``, keyed
by the parameters and :data:`GENERATOR_VERSION` (bump it whenever the output changes).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from bench.data import DatasetError, register_dataset
from bench.panel import Panel

from ._simtext import CHANNELS, PHRASES, prospectus_text

GENERATOR_VERSION = "2"
DEFAULT_FIRMS = 1994
DEFAULT_EVENT_RATE = 38 / 1994
MIN_PER_EVENT_CLASS = 3
CLASS_NAMES = ("performing", "extended", "defaulted")
SECTIONS = ("Important Notice", "Risk Factors")
OPTIONS = ("firms", "event_rate", "data_seed")

FINANCIAL = (
    "EBIT", "EBIT-E", "EBITDA", "EBITDA-E", "MOR", "MOP", "NP", "MOPM", "MORGR", "ROA", "ROE", "EBITDA/TR",
    "OCF/EBITDA", "CR", "QR", "ITR", "D/A", "STD/TD", "IBD/TIC", "CR*", "MF/TD", "ICR", "EBITDA/IBD", "CFO",
    "CFI", "CFF", "ND", "IBD", "TD", "NA", "MA", "TA",
)
MACRO = (
    "GDP", "GDP-P", "GDP-S", "GDP-T", "GDP YoY", "GDP-P YoY", "GDP-S YoY", "GDP-T YoY", "GDP QoQ", "CPI",
    "CPI-U", "CPI-R", "TIE", "TIE YoY", "TB", "M2", "M1", "M0", "M2 YoY", "M1 YoY", "M0 YoY", "FR",
    "EoP Rate", "FI", "FI Bonds", "BCI", "ICI", "ECI", "AFRE", "AFRE YoY", "AFRE QoQ", "CCI", "FR (fiscal)",
    "FR YoY", "FE", "FE YoY",
)

FIRST_PERIOD = pd.Period("2015Q1", "Q")
N_PERIODS = 40  # 2015Q1..2024Q4
PRE = 4  # simulated 2014 quarters that seed year-on-year rates; never observed
WIDTH = PRE + N_PERIODS
EVENT_YEARS = {2018: 0.14, 2019: 0.20, 2020: 0.22, 2021: 0.20, 2022: 0.14, 2023: 0.10}


class _Industry(NamedTuple):
    name: str
    share: float
    log_size: float  # mean log total assets (100m CNY)
    leverage: float  # logit of the typical debt-to-asset ratio
    turnover: float  # annual revenue / total assets
    margin: float  # main operating margin
    inventory: float  # inventory share of non-cash current assets
    current: float  # logit of the non-cash current-asset share
    short_debt: float  # logit of the short-term share of debt
    propensity: float  # tilt of the event draw
    season: tuple[float, float, float, float]  # log revenue seasonality Q1..Q4


INDUSTRIES = (
    _Industry("Urban Construction & Investment", 0.34, 5.8, 0.30, 0.10, 0.13, 0.55, 0.6, 0.0, 0.2,
              (-0.45, -0.10, -0.05, 0.60)),
    _Industry("Real Estate", 0.12, 6.0, 1.25, 0.25, 0.18, 0.75, 1.2, 0.2, 0.6, (-0.40, 0.00, -0.10, 0.50)),
    _Industry("Manufacturing", 0.20, 5.1, 0.15, 0.75, 0.10, 0.35, 0.2, 0.6, 0.1, (-0.15, 0.05, 0.00, 0.10)),
    _Industry("Energy & Utilities", 0.12, 6.5, 0.65, 0.35, 0.14, 0.15, -0.7, -0.2, -0.3,
              (0.00, -0.05, 0.05, 0.00)),
    _Industry("Transportation & Logistics", 0.10, 5.9, 0.45, 0.20, 0.16, 0.10, -0.8, -0.3, 0.0,
              (-0.10, 0.00, 0.05, 0.05)),
    _Industry("Commerce & Services", 0.12, 5.0, 0.25, 0.90, 0.07, 0.40, 0.4, 0.7, 0.2,
              (-0.05, -0.05, -0.05, 0.15)),
)

PATHWAYS = ("liquidity", "leverage", "profitability", "mixed")
# stress knob -> (pathway it belongs to, indicators it moves directly with the sign of the move)
KNOBS: dict[str, tuple[str, dict[str, int]]] = {
    "cash": ("liquidity", {"MA": -1, "CR*": -1, "MF/TD": -1}),
    "short_debt": ("liquidity", {"STD/TD": 1}),
    "current": ("liquidity", {"CR": -1, "QR": -1}),
    "cfo": ("liquidity", {"CFO": -1, "OCF/EBITDA": -1}),
    "cff": ("liquidity", {"CFF": -1}),
    "debt": ("leverage", {"D/A": 1, "NA": -1}),
    "ibd": ("leverage", {"IBD/TIC": 1, "IBD": 1}),
    "rate": ("leverage", {"ICR": -1}),
    "ebitda": ("leverage", {"EBITDA": -1, "EBITDA/IBD": -1, "ICR": -1, "ROA": -1}),
    "margin": ("profitability", {"MOP": -1, "MOPM": -1, "EBITDA/TR": -1}),
    "revenue": ("profitability", {"MOR": -1, "MORGR": -1}),
    "loss": ("profitability", {"NP": -1, "ROE": -1}),
}
#: sign of the deviation of every indicator a stress knob can move (+1 up, -1 down)
STRESS_DIRECTIONS: dict[str, int] = {ind: d for _, moves in KNOBS.values() for ind, d in moves.items()}
_KNOB = {k: i for i, k in enumerate(KNOBS)}
_POOL = np.array([[KNOBS[k][0] == p or p == "mixed" for k in KNOBS] for p in PATHWAYS])
# pathway probabilities per event class, quarters of build-up (low, high inclusive), knobs moved (low, high)
_PATHWAY_P = {1: (0.65, 0.0, 0.15, 0.20), 2: (0.0, 0.65, 0.10, 0.25)}
_LEAD = {"liquidity": (8, 8), "leverage": (8, 12), "profitability": (8, 12), "mixed": (8, 10)}
_N_KNOBS = {"liquidity": (2, 4), "leverage": (2, 3), "profitability": (2, 3), "mixed": (3, 4)}
STRENGTH = 1.15  # scale of every stress knob at full ramp
NEAR_MISS_SHARE = 0.08  # performing firms with a temporary stress episode
SELECTION_TILT = 0.4  # how strongly static risk raises the chance of an event

# missing-cell rates (mean over firms); unlisted indicators use _MISSING_DEFAULT
_MISSING = {"EBIT-E": 0.16, "EBITDA-E": 0.16, "ITR": 0.12, "MORGR": 0.07, "OCF/EBITDA": 0.06, "ICR": 0.06}
_MISSING_DEFAULT = 0.06
# ratios that occasionally explode (tiny denominators, unit slips) like Table A.3's extremes
_TAILS = ("MOPM", "MORGR", "EBITDA/TR", "OCF/EBITDA", "CR", "QR", "CR*", "MF/TD", "ITR", "ICR", "EBITDA/IBD",
          "ROE")


# ---------------------------------------------------------------------------------------------- loading
@register_dataset(
    "simbond",
    description="Embedded simulator shaped like the EMDLOT bond panel (1,994 firms, 2015Q1-2024Q4, "
    "32 financial + 36 macro indicators, prospectus text, known risk drivers); synthetic.",
    synthetic=True,
)
def load(
    arg: str | None = None,
    *,
    firms: int = DEFAULT_FIRMS,
    event_rate: float | None = None,
    data_seed: int = 0,
    **unknown: Any,
) -> Panel:
    """Return the simulated panel, from the cache when these parameters were generated before."""
    if arg is not None:
        raise DatasetError(f"dataset 'simbond' takes no argument, got 'simbond:{arg}'")
    if unknown:
        name = sorted(unknown)[0]
        close = difflib.get_close_matches(name, OPTIONS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise DatasetError(f"dataset 'simbond' has no option '{name}'.{hint} Options: {', '.join(OPTIONS)}")
    params = _params(firms, event_rate, data_seed)
    path = cache_dir(params)
    if path.is_dir():
        return _read(path, params)
    panel = _generate(params)
    _write(panel, path)
    return panel


def generate(firms: int = DEFAULT_FIRMS, event_rate: float | None = None, data_seed: int = 0) -> Panel:
    """Simulate the panel from scratch, bypassing the cache (what ``load`` caches)."""
    return _generate(_params(firms, event_rate, data_seed))


def cache_dir(params: dict[str, Any]) -> Path:
    """Cache folder of one parameter set; the hash includes the generator version."""
    root = Path(os.environ.get("CREDIT_SEQ_BENCH_CACHE") or Path.home() / ".cache" / "credit-seq-bench")
    key = json.dumps({**params, "generator_version": GENERATOR_VERSION}, sort_keys=True)
    return root / f"simbond-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def event_counts(firms: int, event_rate: float) -> tuple[int, int]:
    """(extended, defaulted) firm counts: the paper's 24:14 split, at least three of each."""
    events = max(round(firms * event_rate), 2 * MIN_PER_EVENT_CLASS)
    extended = max(round(events * 24 / 38), MIN_PER_EVENT_CLASS)
    return extended, max(events - extended, MIN_PER_EVENT_CLASS)


def _params(firms: Any, event_rate: Any, data_seed: Any) -> dict[str, Any]:
    """Validated, normalised parameters (``event_rate=None`` -> the paper's 38/1994)."""
    rate = DEFAULT_EVENT_RATE if event_rate is None else event_rate
    if isinstance(firms, bool) or not isinstance(firms, int | np.integer) or firms < 50:
        raise DatasetError(f"simbond: 'firms' must be an integer >= 50, got {firms!r}")
    if isinstance(data_seed, bool) or not isinstance(data_seed, int | np.integer) or data_seed < 0:
        raise DatasetError(f"simbond: 'data_seed' must be a non-negative integer, got {data_seed!r}")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < 1:
        raise DatasetError(f"simbond: 'event_rate' must be a fraction in (0, 1), got {event_rate!r}")
    extended, defaulted = event_counts(int(firms), float(rate))
    if extended + defaulted > firms // 2:
        raise DatasetError(
            f"simbond: event_rate {rate} with {firms} firms gives {extended + defaulted} events; "
            f"at most half the firms may have one"
        )
    return {"firms": int(firms), "event_rate": float(rate), "data_seed": int(data_seed)}


# ---------------------------------------------------------------------------------------------- helpers
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _ar(rng: np.random.Generator, shape: tuple[int, ...], rho: float, sd: float) -> np.ndarray:
    """Stationary AR(1) paths along the last axis (quarters)."""
    x = rng.standard_normal(shape) * sd
    x[..., 0] /= np.sqrt(1 - rho**2)
    for k in range(1, shape[-1]):
        x[..., k] += rho * x[..., k - 1]
    return x


def _ytd(flow: np.ndarray) -> np.ndarray:
    """Quarterly flows -> year-to-date sums (the quarter axis is last and starts at a Q1)."""
    return flow.reshape(*flow.shape[:-1], -1, 4).cumsum(axis=-1).reshape(flow.shape)


def _yoy(x: np.ndarray) -> np.ndarray:
    """Year-on-year change in % along the last axis; NaN for the first year."""
    out = np.full(x.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[..., 4:] = 100.0 * (x[..., 4:] / x[..., :-4] - 1.0)
    return out


def _level(value_2015q1: float, yoy: np.ndarray) -> np.ndarray:
    """A stock growing at the given year-on-year rates, scaled to its 2015Q1 value."""
    path = np.cumprod((1 + yoy / 100) ** 0.25)
    return value_2015q1 * path / path[PRE]


# ---------------------------------------------------------------------------------------------- macro
_YEARS = np.arange(WIDTH) // 4  # 0 = 2014
_Q = np.arange(WIDTH) % 4
_T = np.arange(WIDTH) - PRE  # 0 = 2015Q1


def _at(year: int, quarter: int) -> int:
    return (year - 2014) * 4 + quarter - 1


def _yearly(values: tuple[float, ...]) -> np.ndarray:
    """Per-quarter series from one value per year 2014..2024."""
    return np.asarray(values, dtype=float)[_YEARS]


def _macro(rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """The macro table (2015Q1..2024Q4) and the GDP growth gap per grid quarter (0 in 2014)."""
    w = WIDTH
    qoq = 1.8 - 0.012 * _T + _ar(rng, (w,), 0.5, 0.15)  # real, seasonally adjusted, %
    for (y, q), shock in {(2020, 1): -11.9, (2020, 2): 10.0, (2020, 3): 1.2, (2022, 2): -3.0,
                          (2022, 3): 2.4, (2022, 4): -0.8}.items():
        qoq[_at(y, q)] += shock
    real = np.cumprod(1 + qoq / 100)
    gdp_yoy = _yoy(real)
    gap = np.nan_to_num(gdp_yoy - 5.7)
    infl = _yearly((2.0, 1.4, 2.0, 1.6, 2.1, 2.9, 2.5, 0.9, 2.0, 0.2, 0.2)) + _ar(rng, (w,), 0.6, 0.25)
    infl[_at(2019, 4)] += 1.4
    infl[_at(2020, 1)] += 2.2
    credit = _yearly((1.0, 1.2, 0.9, -0.3, -1.0, -0.5, 1.0, -0.3, 0.3, 0.0, -1.3)) + _ar(rng, (w,), 0.6, 0.25)
    trade = _yearly((3, -8, -7, 11, 12, -1, 2, 30, 4, -5, 4)) + _ar(rng, (w,), 0.5, 3.0)
    trade[_at(2020, 1)] -= 12
    trade[_at(2021, 1)] += 12

    gdp_flow = real * np.cumprod(1 + infl / 400) * np.array([0.225, 0.245, 0.255, 0.275])[_Q]
    gdp_flow *= 688858 / gdp_flow[PRE:PRE + 4].sum()  # 2015 nominal GDP, 100m CNY
    p_share = np.array([0.055, 0.07, 0.10, 0.11])[_Q] * (1 - 0.01 * _T / 4)
    s_share = 0.41 - 0.003 * _T / 4
    trade_flow = np.empty(w)
    trade_flow[:PRE] = 4300 * np.array([0.22, 0.25, 0.26, 0.27])  # 2014, USD bn
    for k in range(PRE, w):
        trade_flow[k] = trade_flow[k - 4] * (1 + trade[k] / 100)
    tb_share = _yearly((0.09, 0.15, 0.14, 0.10, 0.08, 0.09, 0.115, 0.11, 0.14, 0.14, 0.16))
    tb_share += _ar(rng, (w,), 0.5, 0.015)
    m2 = _level(127533, 9.9 + 1.5 * credit + _ar(rng, (w,), 0.6, 0.3))
    m1 = _level(33721, 7.0 + 5.5 * credit + 0.3 * gap + _ar(rng, (w,), 0.6, 1.5))
    m0 = _level(5860, 7.6 + 1.2 * credit + _ar(rng, (w,), 0.7, 2.0)) * np.array([1.04, 0.98, 0.99, 1.0])[_Q]
    afre = 50000 * np.exp(0.0175 * _T) * (1 + 0.15 * credit) * np.array([1.45, 1.05, 0.85, 0.65])[_Q]
    afre *= 1 + _ar(rng, (w,), 0.3, 0.06)
    fiscal = gdp_flow * (0.222 - 0.0015 * _T) * np.array([1.2, 1.1, 0.85, 0.85])[_Q] / 10
    fiscal *= 1 + _ar(rng, (w,), 0.3, 0.03)
    for (y, q), f in {(2020, 1): 0.85, (2020, 2): 0.92, (2022, 2): 0.85}.items():
        fiscal[_at(y, q)] *= f
    spend = gdp_flow * (0.255 - 0.001 * _T) * np.array([0.95, 1.05, 0.9, 1.1])[_Q] / 10
    spend *= 1 + _ar(rng, (w,), 0.3, 0.04)
    cci = _yearly((105, 105, 106, 114, 120, 124, 118, 121, 87, 89, 87))
    cci[_at(2022, 1)] = 113
    gdp = _ytd(gdp_flow)
    tie = _ytd(trade_flow)
    with np.errstate(divide="ignore", invalid="ignore"):
        afre_qoq = np.r_[np.nan, 100 * (afre[1:] / afre[:-1] - 1)]
    series = {
        "GDP": gdp,
        "GDP-P": _ytd(gdp_flow * p_share),
        "GDP-S": _ytd(gdp_flow * s_share),
        "GDP-T": _ytd(gdp_flow * (1 - p_share - s_share)),
        "GDP YoY": gdp_yoy,
        "GDP-P YoY": 3.8 + 0.25 * gap + _ar(rng, (w,), 0.5, 0.5),
        "GDP-S YoY": 5.6 + 1.3 * gap + _ar(rng, (w,), 0.5, 0.6),
        "GDP-T YoY": 6.1 + 0.95 * gap + _ar(rng, (w,), 0.5, 0.5),
        "GDP QoQ": qoq,
        "CPI": 100 + infl,
        "CPI-U": 100 + 0.95 * infl + _ar(rng, (w,), 0.5, 0.1),
        "CPI-R": 99.7 + 1.25 * infl + _ar(rng, (w,), 0.5, 0.15),
        "TIE": tie,
        "TIE YoY": _yoy(tie),
        "TB": _ytd(trade_flow * tb_share),
        "M2": m2,
        "M1": m1,
        "M0": m0,
        "M2 YoY": _yoy(m2),
        "M1 YoY": _yoy(m1),
        "M0 YoY": _yoy(m0),
        "FR": 3170 + 540 * np.exp(-np.maximum(_T, 0) / 2.5) + _ar(rng, (w,), 0.8, 35),
        "EoP Rate": _yearly((6.15, 6.25, 6.75, 6.65, 6.70, 6.95, 6.80, 6.45, 6.90, 7.15, 7.20))
        + _ar(rng, (w,), 0.6, 0.07),
        "FI": m2 * (10.9 + _T / 39) * (1 + _ar(rng, (w,), 0.5, 0.004)),
        "FI Bonds": 8836 * np.exp(0.073 * _T) * (1 + _ar(rng, (w,), 0.7, 0.03)),
        "BCI": 115 + 2.0 * gap + _ar(rng, (w,), 0.5, 1.5),
        "ICI": 114 + 3.0 * gap + _ar(rng, (w,), 0.6, 6.0),
        "ECI": 92 + 2.5 * gap + 8 * credit + _ar(rng, (w,), 0.6, 5.0),
        "AFRE": afre,
        "AFRE YoY": _yoy(afre),
        "AFRE QoQ": afre_qoq,
        "CCI": cci + 0.3 * gap + _ar(rng, (w,), 0.5, 1.5),
        "FR (fiscal)": _ytd(fiscal),
        "FR YoY": _yoy(_ytd(fiscal)),
        "FE": _ytd(spend),
        "FE YoY": _yoy(_ytd(spend)),
    }
    table = pd.DataFrame({"period": pd.period_range(FIRST_PERIOD, periods=N_PERIODS, freq="Q")})
    for name in MACRO:
        table[name] = np.round(series[name][PRE:], 2)
    return table, gap


# ---------------------------------------------------------------------------------------------- firms
@dataclass(frozen=True)
class _Stress:
    """Stress episodes of the event firms and near misses: which knobs, how hard, when."""

    rows: np.ndarray  # firm index
    pathway: np.ndarray  # index into PATHWAYS
    lead: np.ndarray  # quarters of build-up
    amp: np.ndarray  # [S, K] amplitude per knob, 0 where the knob is not moved
    ramp: np.ndarray  # [S, WIDTH] intensity 0..1 per grid quarter

    def on(self, knob: str) -> np.ndarray:
        """[S, WIDTH] stress of one knob."""
        return self.amp[:, _KNOB[knob], None] * self.ramp


def _choose_knobs(rng: np.random.Generator, pathway: np.ndarray) -> np.ndarray:
    """Bool [S, K]: a random subset of each firm's pathway knobs (mixed: >= 1 liquidity and leverage knob)."""
    keys = np.where(_POOL[pathway], rng.random((len(pathway), len(KNOBS))), -1.0)
    mixed = np.flatnonzero(np.asarray(PATHWAYS)[pathway] == "mixed")
    for side in ("liquidity", "leverage"):
        cols = np.array([_KNOB[k] for k, (p, _) in KNOBS.items() if p == side])
        keys[mixed, rng.choice(cols, len(mixed))] = 2.0
    lo, hi = np.array([_N_KNOBS[p] for p in PATHWAYS]).T
    count = rng.integers(lo[pathway], hi[pathway] + 1)
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    return rank < count[:, None]


def _stress(rng: np.random.Generator, label: np.ndarray, event_t: np.ndarray, start: np.ndarray) -> _Stress:
    """Event firms build stress up to their event; a share of performing firms go through a passing episode."""
    events = np.flatnonzero(label > 0)
    performing = np.flatnonzero(label == 0)
    near = np.sort(rng.choice(performing, round(NEAR_MISS_SHARE * len(performing)), replace=False))
    rows = np.r_[events, near]
    pathway = rng.integers(len(PATHWAYS), size=len(rows))
    for c, probs in _PATHWAY_P.items():
        of_class = np.flatnonzero(label[rows] == c)
        pathway[of_class] = rng.choice(len(PATHWAYS), size=len(of_class), p=probs)
    lo, hi = np.array([_LEAD[p] for p in PATHWAYS]).T
    lead = rng.integers(lo[pathway], hi[pathway] + 1)
    t = _T[None, :]
    # events: 0 at Q-lead, full at Q-3 and after; near misses: rise over `lead`, peak, decay over 3-8
    ev = len(events)
    e = event_t[events][:, None]
    rise = np.clip((t - (e - lead[:ev, None])) / (lead[:ev, None] - 3.0), 0, 1) ** 1.3
    peak = rng.integers(start[near] + 4, N_PERIODS + 3)[:, None]
    decay = rng.integers(3, 9, len(near))[:, None]
    up = np.clip((t - (peak - lead[ev:, None])) / lead[ev:, None], 0, 1)
    down = np.clip(1 - (t - peak) / decay, 0, 1)
    ramp = np.r_[rise, np.where(t <= peak, up, down)]
    firm_amp = STRENGTH * np.exp(rng.normal(0, 0.4, (len(rows), 1)))
    knob_amp = firm_amp * np.exp(rng.normal(0, 0.25, (len(rows), len(KNOBS))))
    amp = np.where(_choose_knobs(rng, pathway), knob_amp, 0.0)
    return _Stress(rows=rows, pathway=pathway, lead=lead, amp=amp, ramp=ramp)


def _schedule(rng: np.random.Generator, n: int, event_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observed-cell mask [n, 40] and the first active quarter of each firm."""
    ev = event_t >= 0
    freq = rng.choice(3, size=n, p=[0.86, 0.09, 0.05])  # quarterly, semiannual (Q2/Q4), annual (Q4)
    # nobody starts in 2015Q1, so no firm exceeds 39 quarters; event firms have >= 10 quarters before it
    start = np.where(rng.random(n) < 0.55, 1, rng.integers(2, 31, n))
    start[ev] = np.where(rng.random(ev.sum()) < 0.6, 1, rng.integers(2, np.maximum(event_t[ev] - 9, 3)))
    end = np.where(rng.random(n) < 0.15, rng.integers(start + 6, N_PERIODS - 1), N_PERIODS - 1)
    end[ev] = event_t[ev]
    t = np.arange(N_PERIODS)
    q = t % 4
    reports = np.select([freq[:, None] == 0, freq[:, None] == 1], [True, (q == 1) | (q == 3)], q == 3)
    active = (t >= start[:, None]) & (t <= end[:, None]) & reports
    first = active.argmax(axis=1)
    gap_rate = 0.04 * np.exp(rng.normal(-0.3, 0.8, n))
    gaps = rng.random((n, N_PERIODS)) < gap_rate[:, None]
    gaps[np.arange(n), first] = False
    return active & ~gaps, start


def _indicators(
    rng: np.random.Generator,
    traits: dict[str, np.ndarray],
    st: _Stress,
    gap: np.ndarray,
    observed: np.ndarray,
) -> dict[str, np.ndarray]:
    """All 32 indicators on the firm x quarter grid, returned as long arrays of the observed cells."""
    n = len(traits["size"])
    ind = [np.array(col)[traits["industry"]] for col in zip(*INDUSTRIES, strict=True)]
    _, _, _, lev0, turn0, margin0, inv0, cur0, std0, _, season = ind
    lev, liq, prof, grow = (traits[k][:, None] for k in ("lev", "liq", "prof", "grow"))
    ar_lev, ar_liq, ar_prof, ar_grow = _ar(rng, (4, n, WIDTH), 0.85, 0.25)
    rows = st.rows

    def stressed(x: np.ndarray, knob: str, scale: float | np.ndarray) -> np.ndarray:
        x[rows] += scale * st.on(knob)
        return x

    def noise(sd: float) -> np.ndarray:
        return rng.normal(0.0, sd, (n, WIDTH))

    ta = np.exp(traits["size"][:, None] + (0.08 + 0.05 * grow) * _T / 4 + 0.2 * ar_grow)
    lev_logit = stressed(lev0[:, None] + 0.65 * lev + 0.25 * ar_lev, "debt", 0.7)
    da = 100 * _sigmoid(lev_logit)
    td = ta * da / 100
    na = ta - td
    ibd_logit = 0.35 + 0.4 * lev + rng.normal(0, 0.6, (n, 1)) + 0.15 * ar_lev
    ibd = td * _sigmoid(stressed(ibd_logit, "ibd", 0.9))
    std_logit = std0[:, None] - 0.5 * liq + rng.normal(0, 0.6, (n, 1)) - 0.25 * ar_liq
    std_share = _sigmoid(stressed(std_logit, "short_debt", 1.0))
    cash = _sigmoid(stressed(-2.2 + 0.45 * liq + 0.3 * ar_liq, "cash", -1.3))
    ma = ta * cash
    nca = ta * (1 - cash) * _sigmoid(stressed(cur0[:, None] + 0.3 * liq + 0.2 * ar_liq, "current", -0.9))
    inv = nca * inv0[:, None] * np.exp(rng.normal(0, 0.3, (n, 1)))
    cl = td * (0.3 + 0.6 * std_share)

    turnover = turn0[:, None] * np.exp(rng.normal(0, 0.35, (n, 1)))
    log_rev = (np.log(ta * turnover / 4) + season[np.arange(n)[:, None], _Q[None, :]]
               + traits["beta"][:, None] * 0.02 * gap + 0.3 * ar_grow + noise(0.08))
    rev = np.exp(stressed(log_rev, "revenue", -0.35))
    margin = margin0[:, None] + 0.05 * prof + 0.03 * ar_prof + 0.003 * gap + noise(0.03)
    margin = stressed(margin, "margin", -0.10)
    mop = rev * margin
    ebit_q = stressed(mop + ta * noise(0.001), "ebitda", -0.006 * ta[rows])
    ebitda_q = ebit_q + 0.003 * ta
    rate = 0.045 + 0.008 * lev + rng.normal(0, 0.006, (n, 1)) + np.zeros((1, WIDTH))
    int_q = ibd * stressed(rate, "rate", 0.03) / 4
    pretax = ebit_q - int_q
    np_q = stressed(pretax - 0.25 * np.maximum(pretax, 0), "loss", -0.006 * ta[rows])
    wc = np.array([-1.0, -0.2, 0.1, 1.1])[_Q]
    cfo_q = ebitda_q * (0.7 + noise(0.2)) + 0.2 * wc * rev + ta * noise(0.004)
    cfo_q = stressed(cfo_q, "cfo", -0.010 * ta[rows])
    capex = 0.035 * np.exp(rng.normal(0, 0.4, (n, 1)))
    cfi_q = -ta * capex / 4 * np.abs(1 + noise(0.5))
    dma = np.diff(ma, axis=1, prepend=ma[:, :1])
    cff_q = stressed(dma - cfo_q - cfi_q + ta * noise(0.005), "cff", -0.012 * ta[rows])

    mor, mop_y, ebit, ebitda, np_y = _ytd(rev), _ytd(mop), _ytd(ebit_q), _ytd(ebitda_q), _ytd(np_q)
    with np.errstate(divide="ignore", invalid="ignore"):
        grid = {
            "EBIT": ebit,
            "EBIT-E": ebit * np.exp(noise(0.1)) + ta * noise(0.003),
            "EBITDA": ebitda,
            "EBITDA-E": ebitda * np.exp(noise(0.1)) + ta * noise(0.003),
            "MOR": mor,
            "MOP": mop_y,
            "NP": np_y,
            "MOPM": 100 * mop_y / mor,
            "MORGR": _yoy(mor),
            "ROA": 100 * ebit / ta,
            "ROE": 100 * np_y / na,
            "EBITDA/TR": 100 * ebitda / mor,
            "OCF/EBITDA": _ytd(cfo_q) / ebitda,
            "CR": (ma + nca) / cl,
            "QR": (ma + nca - inv) / cl,
            "ITR": _ytd(rev - mop) / inv,
            "D/A": da,
            "STD/TD": 100 * std_share,
            "IBD/TIC": 100 * ibd / (ibd + na),
            "CR*": ma / cl,
            "MF/TD": ma / td,
            "ICR": ebit / _ytd(int_q),
            "EBITDA/IBD": 100 * ebitda / ibd,
            "CFO": _ytd(cfo_q),
            "CFI": _ytd(cfi_q),
            "CFF": _ytd(cff_q),
            "ND": ibd - ma,
            "IBD": ibd,
            "TD": td,
            "NA": na,
            "MA": ma,
            "TA": ta,
        }
    n_obs = int(observed.sum())
    firm_missing = np.exp(rng.normal(-0.5, 1.0, n))[np.nonzero(observed)[0]]
    out = {}
    for name in FINANCIAL:
        x = grid.pop(name)[:, PRE:][observed]
        if name in _TAILS:
            wild = rng.random(n_obs) < 0.001
            x[wild] *= 10 ** rng.uniform(1.0, 3.5, wild.sum())
        missing = rng.random(n_obs) < _MISSING.get(name, _MISSING_DEFAULT) * firm_missing
        x[missing | ~np.isfinite(x)] = np.nan
        out[name] = np.round(x, 4)
    return out


def _traits(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Static firm traits: industry, log size, correlated standard normal leverage/liquidity/profit/growth."""
    industry = rng.choice(len(INDUSTRIES), size=n, p=[i.share for i in INDUSTRIES])
    corr = np.array([
        [1.0, -0.35, -0.3, 0.1], [-0.35, 1.0, 0.3, 0.0], [-0.3, 0.3, 1.0, 0.2], [0.1, 0.0, 0.2, 1.0],
    ])
    lev, liq, prof, grow = (rng.standard_normal((n, 4)) @ np.linalg.cholesky(corr).T).T
    size = np.array([i.log_size for i in INDUSTRIES])[industry] + rng.normal(0, 1.45, n)
    return {"industry": industry, "size": size, "lev": lev, "liq": liq, "prof": prof, "grow": grow,
            "beta": np.exp(rng.normal(0, 0.4, n))}


def _draw_events(
    rng: np.random.Generator, traits: dict[str, np.ndarray], extended: int, defaulted: int
) -> np.ndarray:
    """Labels, tilted towards risky static traits (Gumbel top-k = weighted sampling without replacement)."""
    n = len(traits["size"])
    size_z = (traits["size"] - traits["size"].mean()) / traits["size"].std()
    risk = (0.7 * traits["lev"] - 0.5 * traits["liq"] - 0.5 * traits["prof"] - 0.25 * size_z
            + np.array([i.propensity for i in INDUSTRIES])[traits["industry"]])
    label = np.zeros(n, dtype=np.int64)
    ext = np.argsort(-(SELECTION_TILT * risk + rng.gumbel(size=n)))[:extended]
    label[ext] = 1
    keys = SELECTION_TILT * (risk + 0.3 * traits["lev"]) + rng.gumbel(size=n)
    keys[ext] = -np.inf
    label[np.argsort(-keys)[:defaulted]] = 2
    return label


def _event_quarters(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    """Event quarter (0 = 2015Q1) per firm, -1 for performing.

    Each event class gets a stratified draw from the same distribution over EVENT_YEARS, so extended and
    defaulted firms share one calendar profile and the calendar alone cannot tell them apart.
    """
    quarters = np.arange(_at(min(EVENT_YEARS), 1), _at(max(EVENT_YEARS), 4) + 1) - PRE
    cdf = np.cumsum(np.repeat(list(EVENT_YEARS.values()), 4))
    event_t = np.full(len(label), -1)
    for c in range(1, len(CLASS_NAMES)):
        rows = np.flatnonzero(label == c)
        u = (np.arange(len(rows)) + rng.random(len(rows))) / len(rows) * cdf[-1]
        event_t[rows] = rng.permutation(quarters[np.searchsorted(cdf, u)])
    return event_t


# ---------------------------------------------------------------------------------------------- assembly
def _generate(params: dict[str, Any]) -> Panel:
    """Draw everything from one generator seeded with ``data_seed``, in a fixed order."""
    rng = np.random.default_rng(params["data_seed"])
    n = params["firms"]
    extended, defaulted = event_counts(n, params["event_rate"])
    macro, gap = _macro(rng)
    traits = _traits(rng, n)
    label = _draw_events(rng, traits, extended, defaulted)
    event_t = _event_quarters(rng, label)
    observed, start = _schedule(rng, n, event_t)
    st = _stress(rng, label, event_t, start)
    values = _indicators(rng, traits, st, gap, observed)

    width = max(5, len(str(n - 1)))
    ids = np.char.add("SB", np.char.zfill(np.arange(n).astype(str), width)).astype(object)
    firm, t = np.nonzero(observed)
    observations = pd.DataFrame({
        "entity": ids[firm],
        "period": pd.PeriodIndex.from_ordinals(FIRST_PERIOD.ordinal + t, freq="Q"),
        **values,
    })
    nat = np.iinfo(np.int64).min
    size_rank = np.digitize(traits["size"], np.quantile(traits["size"], [1 / 3, 2 / 3]))
    entities = pd.DataFrame({
        "entity": ids,
        "label": label,
        "event_period": pd.PeriodIndex.from_ordinals(
            np.where(event_t >= 0, FIRST_PERIOD.ordinal + event_t, nat), freq="Q"),
        "industry": np.array([i.name for i in INDUSTRIES], dtype=object)[traits["industry"]],
        "size": np.array(["small", "mid", "large"], dtype=object)[size_rank],
    })

    notice, factors, planted = _text(rng, traits, label, st, observations)
    text = pd.DataFrame({
        "entity": np.repeat(ids, 2),
        "section": np.tile(np.array(SECTIONS, dtype=object), n),
        "text": np.column_stack([notice.astype(object), factors.astype(object)]).ravel(),
    })
    return _panel(entities, observations, macro, text, _ground_truth(ids, label, st, planted), params)


def _text(
    rng: np.random.Generator,
    traits: dict[str, np.ndarray],
    label: np.ndarray,
    st: _Stress,
    observations: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prospectus sections whose risk language follows static risk and the firm's stress, plus noise."""
    n = len(label)
    risk = 0.3 * traits["lev"] - 0.3 * traits["liq"] - 0.3 * traits["prof"] + rng.normal(0, 0.8, n)
    severity = st.amp.sum(axis=1)
    is_event = label[st.rows] > 0
    risk[st.rows] += np.where(is_event, 0.4 + 0.13 * severity, 0.1 * severity)
    channel_weight = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.6, 0.6, 0.3]])
    affinity = np.zeros((n, len(CHANNELS)))
    affinity[st.rows] = channel_weight[st.pathway] * np.where(is_event, 1.0, 0.5)[:, None]
    # the prospectus quotes the first reported balance sheet
    first = observations.groupby("entity", sort=True)[["NA", "D/A"]].first()
    first = first.fillna(first.median())
    size = traits["size"]
    return prospectus_text(
        rng, industry=traits["industry"], risk=risk, affinity=affinity, size=(size - size.mean()) / size.std(),
        net_assets=first["NA"].to_numpy(), debt_ratio=first["D/A"].to_numpy(),
    )


def _ground_truth(ids: np.ndarray, label: np.ndarray, st: _Stress, planted: np.ndarray) -> pd.DataFrame:
    """One row per event firm: pathway, indicators its knobs moved, signal quarters, planted phrases."""
    ev = label[st.rows] > 0
    phrases = np.array(list(PHRASES))
    knob_names = list(KNOBS)
    rows = []
    for i, p, lead, amp in zip(st.rows[ev], st.pathway[ev], st.lead[ev], st.amp[ev], strict=True):
        moved = {ind for k in np.flatnonzero(amp) for ind in KNOBS[knob_names[k]][1]}
        rows.append({
            "entity": ids[i],
            "pathway": PATHWAYS[p],
            "drivers": ";".join(c for c in FINANCIAL if c in moved),
            "signal_quarters": f"Q-{lead}..Q-3",
            "planted_phrases": ";".join(phrases[planted[i]]),
        })
    return pd.DataFrame(rows).sort_values("entity", ignore_index=True)


def _panel(
    entities: pd.DataFrame,
    observations: pd.DataFrame,
    macro: pd.DataFrame,
    text: pd.DataFrame,
    ground_truth: pd.DataFrame,
    params: dict[str, Any],
) -> Panel:
    return Panel(
        name="simbond",
        entities=entities,
        observations=observations,
        class_names=CLASS_NAMES,
        financial=FINANCIAL,
        macro=macro,
        macro_columns=MACRO,
        text=text,
        sections=SECTIONS,
        synthetic=True,
        ground_truth=ground_truth,
        meta={"generator_version": GENERATOR_VERSION, "params": dict(params), "synthetic": True},
    )


# ---------------------------------------------------------------------------------------------- cache
_TABLES = ("entities", "observations", "macro", "text", "ground_truth")
_PERIOD_COLUMNS = {"entities": "event_period", "observations": "period", "macro": "period"}


def _period_strings(s: pd.Series) -> pd.Series:
    """'2015Q1' strings (NaT -> null) through the few distinct values: ``astype(str)`` is slow on millions."""
    codes, uniques = pd.factorize(s)
    labels = np.append(np.asarray(uniques.astype(str), dtype=object), None)
    return pd.Series(labels[codes], index=s.index)


def _parse_periods(s: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(s)
    ordinals = np.append(pd.PeriodIndex(uniques, freq="Q").asi8, np.iinfo(np.int64).min)
    return pd.Series(pd.PeriodIndex.from_ordinals(ordinals[codes], freq="Q"), index=s.index)


def _write(panel: Panel, path: Path) -> None:
    """Write the tables to a temporary folder and rename it into place, so a cache is whole or absent."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    except OSError as exc:
        warnings.warn(f"simbond: cannot write cache under {path.parent}: {exc}", stacklevel=3)
        return
    try:
        for name in _TABLES:
            frame = getattr(panel, name)
            if name in _PERIOD_COLUMNS:
                col = _PERIOD_COLUMNS[name]
                frame = frame.assign(**{col: _period_strings(frame[col])})
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        tmp.chmod(0o755)  # mkdtemp makes it private; a cache may be shared
        tmp.rename(path)
    except OSError as exc:
        if not path.is_dir():  # else another process just wrote the same cache
            warnings.warn(f"simbond: cannot write cache {path}: {exc}", stacklevel=3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read(path: Path, params: dict[str, Any]) -> Panel:
    tables = {}
    for name in _TABLES:
        frame = pd.read_parquet(path / f"{name}.parquet")
        if name in _PERIOD_COLUMNS:
            col = _PERIOD_COLUMNS[name]
            frame[col] = _parse_periods(frame[col])
        tables[name] = frame
    return _panel(**tables, params=params)
