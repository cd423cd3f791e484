"""The leaderboard is a pure function of the tidy results table."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import friedmanchisquare

from bench import leaderboard, stats
from bench.leaderboard import LeaderboardError


def _table(scores: dict[str, list[float]], valid: dict[str, list[bool]] | None = None, groups=None):
    rows = []
    for model, vals in scores.items():
        for i, v in enumerate(vals):
            rows.append({"model": model, "display_name": model.upper(), "seed": 86 + i,
                         "valid": True if valid is None else valid[model][i],
                         "recall": v, "f1": v, "map": v, "auc": v, "composite": v,
                         "group": (groups or {}).get(model, "all,classic"), "order": 10})
    return pd.DataFrame(rows)


def test_ties_share_the_average_rank():
    lb = leaderboard.build(_table({"a": [0.9, 0.7], "b": [0.8, 0.8], "c": [0.5, 0.6]}))
    s = lb.summary.set_index("model")
    assert s.loc["a", "recall_rank"] == s.loc["b", "recall_rank"] == 1.5
    assert s.loc["c", "recall_rank"] == 3
    assert s.loc["a", "recall_mean"] == pytest.approx(0.8)
    assert s.loc["a", "recall_std"] == pytest.approx(np.std([0.9, 0.7], ddof=1))


def test_invalid_runs_are_counted_but_not_averaged_and_all_invalid_is_unranked():
    df = _table({"a": [0.9, 0.1, 0.7], "svm": [0.3, 0.3, 0.3]},
                valid={"a": [True, False, True], "svm": [False, False, False]})
    lb = leaderboard.build(df)
    s = lb.summary.set_index("model")
    assert s.loc["a", "recall_mean"] == pytest.approx(0.8)
    assert (s.loc["a", "valid_runs"], s.loc["a", "attempted_runs"]) == (2, 3)
    assert not s.loc["svm", "ranked"] and np.isnan(s.loc["svm", "recall_rank"])
    t6 = lb.table6().set_index("Model")
    assert t6.loc["SVM", "Valid/attempted"] == "0/3" and t6.loc["SVM", "Recall"] == "-"
    assert "unranked" in lb.table7().set_index("Model").loc["SVM", "Avg. rank"]


def test_ablation_table_reports_percent_change_against_emdlot():
    groups = {"emdlot": "all,deep", "abl1": "all,ablations"}
    lb = leaderboard.build(_table({"emdlot": [0.8, 0.8], "abl1": [0.6, 0.6]}, groups=groups))
    row = lb.ablations.set_index("Model").loc["ABL1"]
    assert row["Recall Δ%"] == "-25.00%"
    assert "ABL1" not in set(lb.table7()["Model"])  # ablations are not ranked with the models


def test_duplicate_runs_are_rejected():
    df = _table({"a": [0.9, 0.7]})
    with pytest.raises(LeaderboardError, match="two runs for model 'a' seed 86"):
        leaderboard.build(pd.concat([df, df.iloc[:1]]))
    with pytest.raises(LeaderboardError, match="lacks column"):
        leaderboard.build(df.drop(columns="auc"))


def test_friedman_matches_scipy_and_cd_diagram_is_written(tmp_path):
    rng = np.random.default_rng(0)
    scores = {"a": list(0.8 + 0.02 * rng.standard_normal(6)), "b": list(0.7 + 0.02 * rng.standard_normal(6)),
              "c": list(0.5 + 0.02 * rng.standard_normal(6))}
    lb = leaderboard.build(_table(scores))
    expected = friedmanchisquare(*scores.values())
    assert lb.friedman["composite"][1] == pytest.approx(expected.pvalue)
    paths = leaderboard.write(lb, tmp_path, "demo")
    assert (tmp_path / "demo-cd.png").stat().st_size > 1000 and len(paths) == 4
    md = (tmp_path / "demo.md").read_text()
    assert "Friedman" in md and "Tied with best" in md
    s = lb.summary.set_index("model")
    assert s.loc["a", "tied_with_best"] and not s.loc["c", "tied_with_best"]


def test_bootstrap_interval_covers_the_point_estimate():
    rng = np.random.default_rng(1)
    y = np.array([0] * 60 + [1] * 8 + [2] * 6)
    proba = rng.dirichlet(np.ones(3), size=len(y))
    proba[np.arange(len(y)), y] += 0.6
    proba /= proba.sum(axis=1, keepdims=True)
    from bench.metrics import evaluate

    point = evaluate(y, proba, ("p", "e", "d"))
    reps = stats.bootstrap_replicates(y, proba, n_boot=100, seed=3)
    ci = stats.seed_mean_interval([reps])
    for j, m in enumerate(stats.BOOT_METRICS):
        assert ci[j, 0] <= point[m] <= ci[j, 1]
        assert ci[j, 1] - ci[j, 0] > 0
    df = _table({"a": [point["recall"]], "b": [0.5], "c": [0.4]})
    df["bootstrap"] = [reps, None, None]
    df.loc[df.model == "a", ["f1", "map", "auc"]] = [point["f1"], point["map"], point["auc"]]
    lb = leaderboard.build(df)
    assert "[" in lb.table6().set_index("Model").loc["A", "Recall"]


def test_vectorised_bootstrap_agrees_with_sklearn_on_each_replicate():
    from sklearn.metrics import average_precision_score, f1_score, recall_score, roc_auc_score

    rng = np.random.default_rng(4)
    y = np.array([0] * 30 + [1] * 6 + [2] * 4)
    proba = np.round(rng.dirichlet(np.ones(3), size=len(y)), 1) + 1e-3  # rounding makes ties
    proba /= proba.sum(1, keepdims=True)
    reps = stats.bootstrap_replicates(y, proba, n_boot=5, seed=2)
    # rebuild the first replicate's sample with the same generator calls
    g = np.random.default_rng(2)
    idx = np.concatenate([ix[g.integers(0, len(ix), size=(5, len(ix)))] for ix in
                          [np.flatnonzero(y == c) for c in range(3)]], axis=1)[0]
    yb, pb = y[idx], proba[idx]
    onehot = np.eye(3)[yb]
    assert reps[0, 0] == pytest.approx(recall_score(yb, pb.argmax(1), average="macro"))
    assert reps[0, 1] == pytest.approx(f1_score(yb, pb.argmax(1), average="macro"))
    assert reps[0, 2] == pytest.approx(np.mean([average_precision_score(onehot[:, c], pb[:, c]) for c in range(3)]))
    assert reps[0, 3] == pytest.approx(roc_auc_score(yb, pb, multi_class="ovr"))
