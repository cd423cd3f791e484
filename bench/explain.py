"""``bench explain``: the paper's Figures 7–9 and Table D.1 from a model's attention, and their fidelity.

No model weights are stored. A run is reproduced by retraining: its tags name the data, protocol,
model and seed, its params are the resolved model parameters, and every adapter seeds itself, so
the same inputs give the same model (the retrained test probabilities equal the run's
``predictions.csv``). The configuration hash of the run is recomputed first, so a change of data,
protocol or parameters is reported instead of silently explaining another model.

Explanations cover every real entity (train, validation and test; never SMOTE rows). Sequences are
end-aligned, so "Q-1" in the figures is the last kept quarter of each firm (for an event firm, the
third quarter before its event, since the protocol drops the two quarters before it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench import registry
from bench.runner import DataSpec, _context, _seed_data, config_hash, fit_views

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bench.adapter import ModelAdapter
    from bench.panel import Panel
    from bench.protocol import Protocol
    from bench.split import Split
    from bench.tracking import Tracker
    from bench.views import RawSequences, SequenceView, TabularView

N_QUARTERS = 8  # the paper's window: Q-8 .. Q-1
TOP = 10  # indicators per heatmap
PERMUTATION_REPEATS = 3
QUARTERS = tuple(f"Q-{q}" for q in range(N_QUARTERS, 0, -1))
#: section 5.3.3: mean attention over the paper's ten runs
PAPER_SHARES = {("modality", "numeric"): 0.7810, ("modality", "text"): 0.2190,
                ("chapter", "Risk Factors"): 0.5917, ("chapter", "Important Notice"): 0.4083}
RUN_TAGS = ("bench.model", "bench.seed", "bench.dataset_spec", "bench.dataset_options", "bench.protocol",
            "bench.config_hash")
ATTENTION_KEYS = ("feature_financial", "feature_macro", "chapter", "modality")


class ExplainError(ValueError):
    """A request that cannot be explained (wrong model, missing run, no ground truth): the user's to fix."""


# --------------------------------------------------------------------------- what to retrain
@dataclass(frozen=True)
class Source:
    """Everything that determines the model: data, model key, seed, resolved params (and the run's hash)."""

    data: DataSpec
    model: str
    seed: int
    params: dict[str, Any]
    profile: str  # the run profile: sizes the LightGBM baseline of ``--fidelity``
    run_id: str | None = None
    config_hash: str | None = None


def _has_attention(entry: registry.ModelEntry, params: dict[str, Any]) -> bool:
    return callable(getattr(entry.cls, "explain", None)) and params.get("use_attention") is True


def explainable_models() -> list[str]:
    """Registered models whose adapter has ``explain`` and an attention switch that is on."""
    return [e.key for e in registry.entries() if _has_attention(e, e.params())]


def _check_explainable(entry: registry.ModelEntry, params: dict[str, Any]) -> None:
    if not _has_attention(entry, params):
        raise ExplainError(f"model '{entry.key}' has no attention to explain; explainable: "
                           + ", ".join(explainable_models()))


def source_from_options(data: DataSpec, model: str, seed: int, profile: str) -> Source:
    """The model ``bench run`` would train for ``seed`` under ``profile``."""
    entry = registry.get(model)
    params = entry.params(profile)
    _check_explainable(entry, params)
    return Source(data, entry.key, seed, params, profile)


def _decode(default: Any, text: str) -> Any:
    """MLflow keeps params as strings; the runner JSON-encodes every non-string value."""
    if isinstance(default, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def source_from_run(tracker: Tracker, run_id: str) -> Source:
    """Read a finished seed run's tags and params back into a :class:`Source`."""
    from mlflow.exceptions import MlflowException

    try:
        run = tracker.client.get_run(run_id)
    except MlflowException:
        raise ExplainError(f"run '{run_id}' not found in {tracker.uri}") from None
    tags = run.data.tags
    if tags.get("bench.kind") != "seed" or run.info.status != "FINISHED":
        raise ExplainError(f"run '{run_id}' is not a finished seed run of `bench run` "
                           "(pick a child run: one model, one seed)")
    missing = [t for t in RUN_TAGS if t not in tags]
    if missing:
        raise ExplainError(f"run '{run_id}' lacks the tag(s) {', '.join(missing)} needed to retrain it "
                           "(made by an older version?)")
    entry = registry.get(tags["bench.model"])
    params = {k: _decode(entry.cls.default_params.get(k), v) for k, v in run.data.params.items()}
    _check_explainable(entry, params)
    data = DataSpec(tags["bench.dataset_spec"], tuple(json.loads(tags["bench.dataset_options"]).items()),
                    tags["bench.protocol"])
    return Source(data, entry.key, int(tags["bench.seed"]), params, tags.get("bench.profile", "paper"),
                  run_id, tags["bench.config_hash"])


# --------------------------------------------------------------------------- retraining
@dataclass
class Fitted:
    """A retrained model with the data it saw: ``view`` and ``tabular`` hold every real entity."""

    source: Source
    model: ModelAdapter
    panel: Panel
    raw: RawSequences
    protocol: Protocol
    split: Split
    view: SequenceView
    tabular: TabularView


def fit_like_runner(model: str, seed: int, params: dict[str, Any], full: SequenceView | TabularView,
                    split: Split, protocol: Protocol) -> ModelAdapter:
    """Fit as ``run_task`` does: oversampling on the training part only, the validation slice for early stopping."""
    train, valid = fit_views(full, split, protocol, seed)
    return registry.get(model).make(seed, overrides=params).fit(train, valid if len(valid) else None)


def retrain(source: Source) -> Fitted:
    """Retrain the model deterministically; refuse when the run's data or configuration changed since."""
    panel, raw, protocol = _context(source.data)
    if source.config_hash is not None:
        now = config_hash(source.model, source.params, protocol, panel.fingerprint())
        if now != source.config_hash:
            raise ExplainError(
                f"run '{source.run_id}' cannot be reproduced: its configuration hash is {source.config_hash}, "
                f"the same model, params, protocol and data give {now} today (data or code changed)")
    split, prep, tab = _seed_data(source.data, source.seed)
    model = fit_like_runner(source.model, source.seed, source.params, prep.view, split, protocol)
    return Fitted(source, model, panel, raw, protocol, split, prep.view, tab)


# --------------------------------------------------------------------------- attention summaries
def attention_shares(weights: dict[str, np.ndarray], sections: tuple[str, ...]) -> pd.DataFrame | None:
    """Figure 7: mean modality weights (numeric, text) and mean chapter weights per section."""
    rows = []
    for level, names in (("modality", ("numeric", "text")), ("chapter", sections)):
        if level in weights:
            rows += [(level, n, float(w)) for n, w in zip(names, weights[level].mean(0), strict=True)]
    if not rows:
        return None
    df = pd.DataFrame(rows, columns=["level", "name", "share"])
    df["paper"] = [PAPER_SHARES.get((lv, n), np.nan) for lv, n in zip(df["level"], df["name"], strict=True)]
    return df


def quarter_matrix(alpha: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[F, 8] mean weight per feature over Q-8..Q-1 (the last 8 steps), counting only real quarters.

    A column where no firm has a real quarter is NaN.
    """
    a, m = alpha[:, -N_QUARTERS:], mask[:, -N_QUARTERS:, None]
    n = m.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (a * m).sum(0) / n, np.nan).T


def _top(alpha: np.ndarray, mask: np.ndarray, names: tuple[str, ...], top: int = TOP) -> pd.DataFrame:
    """The ``top`` features by mean weight over the window's real quarters, one row each, Q-8..Q-1 columns."""
    mat = quarter_matrix(alpha, mask)
    m = mask[:, -N_QUARTERS:]
    overall = (alpha[:, -N_QUARTERS:] * m[..., None]).sum((0, 1)) / max(int(m.sum()), 1)
    order = np.argsort(-overall, kind="stable")[:top]
    df = pd.DataFrame(mat[order], columns=list(QUARTERS))
    df.insert(0, "indicator", [names[i] for i in order])
    df.insert(0, "rank", np.arange(1, len(order) + 1))
    df["mean"] = overall[order]
    return df


def financial_heatmaps(weights: dict[str, np.ndarray], view: SequenceView) -> pd.DataFrame | None:
    """Figure 8: per hard cluster (argmax of π), the top financial indicators over Q-8..Q-1.

    A variant without clustering gets one group, ``cluster = "all"``.
    """
    if "feature_financial" not in weights:
        return None
    if "cluster" in weights:
        hard = weights["cluster"].argmax(1)
        groups = [(int(c), hard == c) for c in np.unique(hard)]
    else:
        groups = [("all", np.ones(len(view), dtype=bool))]
    names = view.feature_names[: view.n_financial]
    parts = []
    for c, rows in groups:
        df = _top(weights["feature_financial"][rows], view.mask[rows], names)
        df.insert(0, "firms", int(rows.sum()))
        df.insert(0, "cluster", c)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def macro_heatmap(weights: dict[str, np.ndarray], view: SequenceView) -> pd.DataFrame | None:
    """Figure 9: population-level macro attention over Q-8..Q-1 (top 10 series)."""
    if "feature_macro" not in weights:
        return None
    return _top(weights["feature_macro"], view.mask, view.feature_names[view.n_financial:])


def cluster_table(weights: dict[str, np.ndarray], view: SequenceView) -> pd.DataFrame | None:
    """Table D.1: entities per hard cluster and class (every cluster listed, empty ones too)."""
    if "cluster" not in weights:
        return None
    k = weights["cluster"].shape[1]
    hard = weights["cluster"].argmax(1)
    counts = np.zeros((k, len(view.class_names)), dtype=int)
    np.add.at(counts, (hard, view.y), 1)
    df = pd.DataFrame(counts, columns=list(view.class_names))
    df.insert(0, "cluster", np.arange(k))
    df["total"] = counts.sum(1)
    return df


@dataclass
class Explanation:
    """The tables behind the figures; a part a variant removes is ``None``."""

    title: str
    weights: dict[str, np.ndarray]
    shares: pd.DataFrame | None
    financial: pd.DataFrame | None
    macro: pd.DataFrame | None
    clusters: pd.DataFrame | None


def explain_fitted(fitted: Fitted) -> Explanation:
    """Attention of the fitted model on every real entity, summarised as in section 5.3.3."""
    view = fitted.view
    weights = fitted.model.explain(view)
    if not any(k in weights for k in ATTENTION_KEYS):
        raise ExplainError(f"model '{fitted.source.model}' returned no attention weights")
    s = fitted.source
    title = (f"{registry.get(s.model).display_name}, seed {s.seed}, {s.data.experiment}"
             + (" (synthetic)" if fitted.panel.synthetic else "") + f", {len(view)} entities")
    return Explanation(title, weights, attention_shares(weights, view.sections), financial_heatmaps(weights, view),
                       macro_heatmap(weights, view), cluster_table(weights, view))


# --------------------------------------------------------------------------- figures
def _bars(ax: Any, df: pd.DataFrame, title: str) -> None:
    bars = ax.bar(df["name"], df["share"] * 100, color=["#4472c4", "#ed7d31", "#a5a5a5"][: len(df)])
    ax.bar_label(bars, fmt="%.2f%%")
    ax.set_ylim(0, 100)
    ax.set_ylabel("mean attention (%)")
    ax.set_title(title)


def figure7(shares: pd.DataFrame, title: str) -> Figure:
    """Inter-modal and chapter attention as bar charts (paper Figure 7)."""
    from matplotlib.figure import Figure

    levels = [(lv, t) for lv, t in (("modality", "Inter-modal attention"), ("chapter", "Chapter attention"))
              if (shares["level"] == lv).any()]
    fig = Figure(figsize=(5 * len(levels), 4), layout="constrained")
    for ax, (lv, t) in zip(np.atleast_1d(fig.subplots(1, len(levels))), levels, strict=True):
        _bars(ax, shares[shares["level"] == lv], t)
    fig.suptitle(title, fontsize=9)
    return fig


def _heatmap(fig: Figure, ax: Any, df: pd.DataFrame, title: str) -> None:
    im = ax.imshow(df[list(QUARTERS)].to_numpy(dtype=float), aspect="auto", cmap="YlOrRd")
    ax.set_xticks(range(N_QUARTERS), QUARTERS, fontsize=7)
    ax.set_yticks(range(len(df)), df["indicator"], fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)


def figure8(financial: pd.DataFrame, title: str) -> Figure:
    """One heatmap per non-empty cluster: top financial indicators x Q-8..Q-1 (paper Figure 8)."""
    from matplotlib.figure import Figure

    groups = list(financial.groupby("cluster", sort=True))
    ncols = min(4, len(groups))
    nrows = -(-len(groups) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.6 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, (c, df) in zip(axes, groups, strict=False):
        _heatmap(fig, ax, df, f"{'All firms' if c == 'all' else f'Cluster {c}'} ({df['firms'].iloc[0]} firms)")
    for ax in axes[len(groups):]:
        ax.set_axis_off()
    fig.suptitle(f"Financial indicator attention; Q-1 = last quarter of each sequence\n{title}", fontsize=9)
    return fig


def figure9(macro: pd.DataFrame, title: str) -> Figure:
    """Population heatmap of macro attention over Q-8..Q-1 (paper Figure 9)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5), layout="constrained")
    _heatmap(fig, fig.subplots(), macro, "Macroeconomic indicator attention (all firms)")
    fig.suptitle(title, fontsize=9)
    return fig


def write_artefacts(expl: Explanation, out: Path) -> list[Path]:
    """PNG figures and their CSV tables under ``out``; parts the variant lacks are skipped."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, df, draw in (("figure7_attention_shares", expl.shares, figure7),
                           ("figure8_financial_attention", expl.financial, figure8),
                           ("figure9_macro_attention", expl.macro, figure9),
                           ("table_d1_clusters", expl.clusters, None)):
        if df is None:
            continue
        df.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
        written.append(out / f"{name}.csv")
        if draw is not None:
            draw(df, expl.title).savefig(out / f"{name}.png", dpi=120)
            written.append(out / f"{name}.png")
    return written


def text_table(df: pd.DataFrame) -> str:
    """A plain-text table; missing values (NaN) print as '-'."""
    from tabulate import tabulate

    return tabulate(df.astype(object).where(df.notna(), None), headers="keys", showindex=False, floatfmt=".4f",
                    missingval="-")


def summary(expl: Explanation) -> str:
    """Shares, top indicators per cluster and Table D.1 as plain-text tables."""
    parts = [expl.title]
    if expl.shares is not None:
        parts.append("Figure 7: mean attention shares (paper: mean of ten runs)\n" + text_table(expl.shares))
    if expl.financial is not None:
        top = (expl.financial[expl.financial["rank"] <= 5].groupby(["cluster", "firms"], sort=True)["indicator"]
               .agg(", ".join).reset_index().rename(columns={"indicator": "top 5 financial indicators (Q-8..Q-1)"}))
        parts.append("Figure 8: most attended financial indicators per cluster\n" + text_table(top))
    if expl.macro is not None:
        parts.append("Figure 9: top macro series: " + ", ".join(expl.macro["indicator"].head(5)))
    if expl.clusters is not None:
        parts.append("Table D.1: entities per cluster and class\n" + text_table(expl.clusters))
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- fidelity
def precision_at_k(scores: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Per row: share of the ``k`` highest-scoring columns that are true (ties: column order)."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(truth, top, axis=1).mean(1)


def rank_correlation(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per row: Spearman correlation between the scores and membership (NaN when either is constant)."""
    from scipy.stats import spearmanr

    out = np.full(len(scores), np.nan)
    for i, (s, t) in enumerate(zip(scores, truth, strict=True)):
        if s.min() != s.max() and t.min() != t.max():
            out[i] = spearmanr(s, t).statistic
    return out


def _macro_auc(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, proba, multi_class="ovr", average="macro"))


def _permutation(model: ModelAdapter, columns: np.ndarray, rebuild: Any, y: np.ndarray, seed: int) -> np.ndarray:
    """sklearn's permutation importance (drop in macro AUC) of the columns of ``columns``.

    ``rebuild`` turns the (permuted) columns back into the view the model predicts on.
    """
    from sklearn.inspection import permutation_importance

    res = permutation_importance(model, columns, y, n_repeats=PERMUTATION_REPEATS, random_state=seed,
                                 scoring=lambda est, cols, yy: _macro_auc(yy, est.predict_proba(rebuild(cols))))
    return res.importances_mean


def sequence_permutation(model: ModelAdapter, view: SequenceView, seed: int) -> np.ndarray:
    """[n_financial]: drop in macro AUC when indicator j's whole series is permuted across entities.

    Column j of the permuted matrix says whose series of indicator j each entity gets; the mask,
    Δt and every other feature stay the entity's own.
    """
    nf = view.n_financial
    owner = np.repeat(np.arange(len(view))[:, None], nf, axis=1)

    def rebuild(idx: np.ndarray) -> SequenceView:
        X = view.X.copy()
        X[:, :, :nf] = view.X[idx, :, np.arange(nf)].transpose(0, 2, 1)
        return replace(view, X=X)

    return _permutation(model, owner, rebuild, view.y, seed)


def tabular_permutation(model: ModelAdapter, tab: TabularView, financial: tuple[str, ...], seed: int) -> np.ndarray:
    """[n_financial]: permutation importance of each summary column, summed over an indicator's 7 statistics."""
    base = np.array([name.split("__")[0] for name in tab.feature_names])
    cols = np.flatnonzero(np.isin(base, financial))

    def rebuild(sub: np.ndarray) -> TabularView:
        X = tab.X.copy()
        X[:, cols] = sub
        return replace(tab, X=X)

    imp = _permutation(model, tab.X[:, cols], rebuild, tab.y, seed)
    return pd.Series(imp).groupby(base[cols]).sum().reindex(list(financial)).to_numpy()


def _signal_windows(fitted: Fitted, rows: np.ndarray, truth: pd.DataFrame) -> np.ndarray:
    """Bool [E, T]: real quarters of each event firm inside its planted window ``Q-a..Q-b`` (relative to the event)."""
    from bench.views import month_index

    raw = fitted.raw
    after = np.cumsum(raw.dt[rows, ::-1], axis=1)[:, ::-1] - raw.dt[rows]  # months from step t to the last one
    month = raw.last_month[rows, None] - after
    ents = fitted.panel.entities.set_index("entity").loc[raw.entity[rows]]
    rel = (month - month_index(ents["event_period"])[:, None]) / 3
    bounds = truth["signal_quarters"].str.extract(r"Q-(\d+)\.\.Q-(\d+)").astype(int).to_numpy()
    return raw.mask[rows] & (rel >= -bounds[:, :1]) & (rel <= -bounds[:, 1:])


@dataclass
class Fidelity:
    """The fidelity table (one row per ranker) and what is needed to read it."""

    table: pd.DataFrame
    event_firms: int
    top_k: int
    ceiling: float  # mean precision@k when every driver is ranked first

    @property
    def text(self) -> str:
        """The table and how to read it."""
        k = self.top_k
        return text_table(self.table) + (
            f"\n{self.event_firms} event firms; precision@{k} = share of the top {k} indicators that are the "
            f"firm's planted drivers (ceiling {self.ceiling:.3f}: every driver ranked first; random floor = "
            "|drivers| / n). Permutation importance = drop in macro AUC over all explained entities. "
            "driver_mass_in_signal = share of the attention on a firm's drivers that falls in its planted "
            "signal quarters; signal_quarter_share = the same if that attention were flat over time.")


def _ground_truth(panel: Panel, dataset: str, top_k: int, n_financial: int) -> pd.DataFrame:
    if panel.ground_truth is None or panel.ground_truth.empty:
        raise ExplainError(f"--fidelity needs a panel with a ground truth of event drivers (simbond); "
                           f"dataset '{dataset}' has none")
    if not 1 <= top_k <= n_financial:
        raise ExplainError(f"--top-k {top_k}: expected 1..{n_financial} (the number of financial indicators)")
    return panel.ground_truth


def fidelity(fitted: Fitted, weights: dict[str, np.ndarray], top_k: int = TOP) -> Fidelity:
    """Rank the financial indicators four ways and score each ranking against the planted drivers.

    Rankers: the model's attention per firm (mean over its last 8 real quarters), permutation
    importance of the same model and of LightGBM on the same split (global rankings), and random.
    """
    view, seed = fitted.view, fitted.source.seed
    truth = _ground_truth(fitted.panel, fitted.source.data.dataset, top_k, view.n_financial)
    if "feature_financial" not in weights:
        raise ExplainError(f"model '{fitted.source.model}' has no financial attention to check")
    financial = view.feature_names[: view.n_financial]
    pos = {e: i for i, e in enumerate(view.entity)}
    truth = truth[truth["entity"].isin(pos)].reset_index(drop=True)
    rows = truth["entity"].map(pos).to_numpy()
    drivers = np.array([[f in set(d.split(";")) for f in financial] for d in truth["drivers"]])

    alpha, mask = weights["feature_financial"][rows], view.mask[rows]
    last = mask & (np.cumsum(mask[:, ::-1], axis=1)[:, ::-1] <= N_QUARTERS)  # the last 8 real quarters
    lgbm_params = registry.get("lightgbm").params(fitted.source.profile)
    lgbm = fit_like_runner("lightgbm", seed, lgbm_params, fitted.tabular, fitted.split, fitted.protocol)
    rankers = {
        ("attention", "per firm"): (alpha * last[..., None]).sum(1) / last.sum(1, keepdims=True),
        ("emdlot-permutation", "global"): sequence_permutation(fitted.model, view, seed),
        ("lightgbm-permutation", "global"): tabular_permutation(lgbm, fitted.tabular, financial, seed),
        ("random", f"per firm, seed {seed}"): np.random.default_rng(seed).random(drivers.shape),
    }
    table = []
    for (ranker, how), s in rankers.items():
        s = np.broadcast_to(s, drivers.shape)
        table.append({"ranker": ranker, "ranking": how, f"precision@{top_k}": precision_at_k(s, drivers, top_k).mean(),
                      "spearman": np.nanmean(rank_correlation(s, drivers))})
    table.append({"ranker": "random", "ranking": "expected",
                  f"precision@{top_k}": drivers.sum(1).mean() / len(financial), "spearman": 0.0})
    window = _signal_windows(fitted, rows, truth)
    driver_mass = (alpha * drivers[:, None, :]).sum(2)  # [E, T]: attention on the firm's drivers per quarter
    table[0]["driver_mass_in_signal"] = np.mean((driver_mass * window).sum(1) / driver_mass.sum(1))
    table[0]["signal_quarter_share"] = np.mean(window.sum(1) / mask.sum(1))
    ceiling = float(np.minimum(drivers.sum(1), top_k).mean() / top_k)
    return Fidelity(pd.DataFrame(table), len(truth), top_k, ceiling)


# --------------------------------------------------------------------------- the command
@dataclass
class Report:
    explanation: Explanation
    files: list[Path]
    fidelity: Fidelity | None


def run_explain(source: Source, out: Path, *, with_fidelity: bool = False, top_k: int = TOP) -> Report:
    """Retrain, explain, write the artefacts (and ``fidelity.csv``); fidelity inputs are checked before training."""
    if with_fidelity:
        panel, raw, _ = _context(source.data)
        _ground_truth(panel, source.data.dataset, top_k, raw.n_financial)
    fitted = retrain(source)
    expl = explain_fitted(fitted)
    files = write_artefacts(expl, out)
    fid = None
    if with_fidelity:
        fid = fidelity(fitted, expl.weights, top_k)
        fid.table.to_csv(out / "fidelity.csv", index=False, float_format="%.6g")
        files.append(out / "fidelity.csv")
    return Report(expl, files, fid)
