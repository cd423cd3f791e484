"""Model-facing views of a panel: the sequence tensors and the tabular matrix.

Shapes, written once here and referred to by every adapter:

``SequenceView``
    ``X``      float32 [N, T, D]  features per step: the panel's financial indicators
                                   first (``n_financial`` of them), then macro series.
                                   End-aligned: padding sits at the front, the last
                                   valid observation is always at ``t = T-1``.
                                   Padded steps are exactly 0.
    ``mask``   bool    [N, T]     True at real observations.
    ``dt``     float32 [N, T]     months since the previous valid observation
                                   (0 at the first valid step and at padding).
    ``text``   float32 [N, S, E]  one embedding per text section (S may be 0).
    ``y``      int64   [N]        class index into ``class_names``.
    ``entity`` object  [N]        entity ids (synthetic SMOTE rows get ``"smote-<i>"``).

``TabularView``
    ``X``      float32 [N, F]     per-feature last/mean/std/min/max/slope/count over
                                   the valid steps, then the flattened text dims.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bench.panel import Panel, PanelError

MAX_LEN = 39  # the paper's longest firm history, in quarters


@dataclass(frozen=True, eq=False)
class SequenceView:
    X: np.ndarray
    mask: np.ndarray
    dt: np.ndarray
    text: np.ndarray
    y: np.ndarray
    entity: np.ndarray
    feature_names: tuple[str, ...]
    n_financial: int
    sections: tuple[str, ...]
    class_names: tuple[str, ...]

    kind = "sequence"

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> SequenceView:
        return replace(
            self, X=self.X[idx], mask=self.mask[idx], dt=self.dt[idx], text=self.text[idx],
            y=self.y[idx], entity=self.entity[idx],
        )


@dataclass(frozen=True, eq=False)
class TabularView:
    X: np.ndarray
    y: np.ndarray
    entity: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    macro_features: tuple[str, ...] = ()  # base names of the macro series among the summarised features

    kind = "tabular"

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> TabularView:
        return replace(self, X=self.X[idx], y=self.y[idx], entity=self.entity[idx])


@dataclass(frozen=True, eq=False)
class RawSequences:
    """End-aligned raw arrays of a whole panel, before any fitted preprocessing.

    Built once per (panel, alignment); the per-seed preprocessing is fitted on the
    training rows of these arrays only. ``X`` holds NaN for missing cells and padding.
    ``last_month`` is the calendar month index of each entity's last kept observation
    (used by the leakage audit and temporal split).
    """

    X: np.ndarray
    mask: np.ndarray
    dt: np.ndarray
    last_month: np.ndarray
    texts: dict[str, np.ndarray]
    y: np.ndarray
    entity: np.ndarray
    feature_names: tuple[str, ...]
    n_financial: int
    class_names: tuple[str, ...]


def month_index(periods: pd.Series | pd.PeriodIndex) -> np.ndarray:
    """Calendar month number (year*12 + month-1) of each period's last month: Δt and alignment use it."""
    end = pd.DatetimeIndex(periods.dt.end_time if isinstance(periods, pd.Series) else periods.end_time)
    return np.asarray(end.year * 12 + end.month - 1, dtype=np.int64)


def _matched_cut(ent_ids: np.ndarray, months: np.ndarray, is_event: np.ndarray, seed: int) -> np.ndarray:
    """Keep-mask that cuts non-event histories at dates drawn from the event firms' last dates.

    Under the paper's alignment performing firms run to the end of the data while event
    firms stop before their event, so "when did the history stop" reveals the label. Here
    each non-event firm's last kept month is drawn uniformly among the event firms' last
    months that fall inside its own history (a firm with none keeps its history).
    """
    frame = pd.DataFrame({"e": ent_ids, "m": months})
    first = frame.groupby("e")["m"].min()
    last = frame.groupby("e")["m"].max()
    ev_last = np.sort(last[last.index.isin(ent_ids[is_event])].to_numpy())
    targets = last.copy()
    non = ~last.index.isin(ent_ids[is_event])
    if len(ev_last) and non.any():
        rng = np.random.default_rng(seed)
        lo = np.searchsorted(ev_last, first[non].to_numpy(), side="left")
        hi = np.searchsorted(ev_last, last[non].to_numpy(), side="right")
        pick = lo + np.floor(rng.random(non.sum()) * np.maximum(hi - lo, 1)).astype(int)
        drawn = ev_last[np.minimum(pick, len(ev_last) - 1)]
        targets[non] = np.where(hi > lo, drawn, last[non].to_numpy())
    return months <= frame["e"].map(targets).to_numpy()


def build_raw_sequences(panel: Panel, max_len: int = MAX_LEN, drop_quarters_before_event: int = 2,
                        alignment: str = "paper", match_seed: int = 0) -> RawSequences:
    """End-align every entity's history, join macro on period, cap at ``max_len`` steps.

    For entities with an event, observations are cut so that the last kept one ends at
    least ``drop_quarters_before_event`` quarters before the quarter of the event
    (the paper's "exclude the two quarters prior to default"). ``alignment="matched"``
    also cuts non-event firms so that their last dates follow the event firms' (leakage
    audit; see :func:`_matched_cut`).
    """
    if alignment not in ("paper", "matched"):
        raise PanelError(f"alignment must be 'paper' or 'matched', got '{alignment}'")
    obs = panel.observations
    months = month_index(obs["period"])
    ent = panel.entities.set_index("entity")
    keep = np.ones(len(obs), dtype=bool)
    events = ent["event_period"].dropna()
    if len(events):
        ev_end = pd.Series(month_index(pd.PeriodIndex(events.to_numpy())), index=events.index)
        ev_months = obs["entity"].map(ev_end).to_numpy(dtype=float)
        # event period end month - 3 = last month of the quarter before it; cut `drop` more quarters
        limit = ev_months - 3 - 3 * drop_quarters_before_event
        has = ~np.isnan(ev_months)
        keep[has] = months[has] <= limit[has]
    obs = obs.loc[keep]
    months = months[keep]
    if alignment == "matched":
        ids_obs = obs["entity"].to_numpy()
        cut = _matched_cut(ids_obs, months, np.isin(ids_obs, events.index.to_numpy()), match_seed)
        obs, months = obs.loc[cut], months[cut]
    cols = list(panel.financial)
    values = obs[cols].to_numpy(dtype=np.float32)
    if panel.macro_columns:
        macro = panel.macro.set_index("period")[list(panel.macro_columns)]
        mvals = macro.reindex(pd.PeriodIndex(obs["period"])).to_numpy(dtype=np.float32)
        values = np.concatenate([values, mvals], axis=1)
        cols += list(panel.macro_columns)
    order = np.lexsort((months, obs["entity"].to_numpy()))
    ent_sorted = obs["entity"].to_numpy()[order]
    values, months = values[order], months[order]

    ids = panel.entity_ids
    pos = {e: i for i, e in enumerate(ids)}
    n, d = len(ids), len(cols)
    X = np.full((n, max_len, d), np.nan, dtype=np.float32)
    mask = np.zeros((n, max_len), dtype=bool)
    dt = np.zeros((n, max_len), dtype=np.float32)
    last_month = np.full(n, -1, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, ent_sorted[1:] != ent_sorted[:-1]])
    ends = np.r_[starts[1:], len(ent_sorted)]
    for s, e in zip(starts, ends, strict=True):
        i = pos[ent_sorted[s]]
        s = max(s, e - max_len)
        k = e - s
        X[i, max_len - k:] = values[s:e]
        mask[i, max_len - k:] = True
        m = months[s:e]
        dt[i, max_len - k + 1:] = np.diff(m)
        last_month[i] = m[-1]
    empty = ~mask.any(axis=1)
    if empty.any():
        raise PanelError(
            f"panel '{panel.name}': entity '{ids[np.flatnonzero(empty)[0]]}' has no observation left after "
            f"dropping {drop_quarters_before_event} quarters before its event"
        )
    texts: dict[str, np.ndarray] = {}
    if panel.text is not None:
        for sec in panel.sections:
            t = panel.text.loc[panel.text["section"] == sec].set_index("entity")["text"]
            texts[sec] = t.reindex(ids).fillna("").to_numpy(dtype=object)
    return RawSequences(
        X=X, mask=mask, dt=dt, last_month=last_month, texts=texts, y=panel.labels, entity=ids,
        feature_names=tuple(cols), n_financial=len(panel.financial), class_names=panel.class_names,
    )


TABULAR_STATS = ("last", "mean", "std", "min", "max", "slope", "count")


def tabular_from_sequence(view: SequenceView, observed: np.ndarray) -> TabularView:
    """Summarise each feature over the valid steps; ``observed`` [N,T,D] marks non-imputed cells."""
    X, m = view.X, view.mask[..., None]
    n_valid = np.maximum(m.sum(axis=1), 1)
    mean = (X * m).sum(axis=1) / n_valid
    var = (((X - mean[:, None]) ** 2) * m).sum(axis=1) / n_valid
    big = np.float32(1e30)
    mn = np.where(m, X, big).min(axis=1)
    mx = np.where(m, X, -big).max(axis=1)
    # time in years relative to the last observation, from the month gaps
    t = -np.flip(np.cumsum(np.flip(view.dt, axis=1), axis=1), axis=1) / 12.0 + view.dt / 12.0
    t = t[..., None]
    tm = (t * m).sum(axis=1) / n_valid
    cov = ((t - tm[:, None]) * (X - mean[:, None]) * m).sum(axis=1)
    tvar = (((t - tm[:, None]) ** 2) * m).sum(axis=1)
    slope = np.where(tvar > 1e-9, cov / np.maximum(tvar, 1e-9), 0.0)
    count = observed.sum(axis=1).astype(np.float32)
    feats = [X[:, -1], mean, np.sqrt(var), mn, mx, slope, count]
    names = [f"{f}__{s}" for s in TABULAR_STATS for f in view.feature_names]
    parts = [np.stack(feats, axis=1).reshape(len(X), -1)]
    if view.text.shape[1]:
        parts.append(view.text.reshape(len(X), -1))
        names += [f"text_{s}_{j}" for s in view.sections for j in range(view.text.shape[2])]
    out = np.concatenate(parts, axis=1).astype(np.float32)
    return TabularView(X=out, y=view.y, entity=view.entity, feature_names=tuple(names), class_names=view.class_names,
                       macro_features=view.feature_names[view.n_financial:])
