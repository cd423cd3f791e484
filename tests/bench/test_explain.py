"""`bench explain`: figures from a trained model's attention, exact retraining from a run, fidelity.

One quick EMDLOT run on 300 simbond firms (seed 86) feeds every model test; one thread keeps the
three fits (the run, its retraining, the command's retraining) fast on a shared machine.
"""

import io

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.explain import (
    QUARTERS,
    Explanation,
    attention_shares,
    cluster_table,
    explainable_models,
    financial_heatmaps,
    precision_at_k,
    quarter_matrix,
    rank_correlation,
    retrain,
    source_from_run,
    summary,
    write_artefacts,
)
from bench.runner import DataSpec, _context, run_benchmark
from bench.tracking import Tracker

DATA = DataSpec("simbond", (("firms", 300),))
runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(tracker, the seed run) of one quick EMDLOT run in a fresh store."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CREDIT_SEQ_BENCH_THREADS", "1")
        tracker = Tracker(f"sqlite:///{tmp_path_factory.mktemp('explain') / 'mlflow.db'}")
        run_benchmark(DATA, "emdlot", tracker, seeds=[86], profile="quick")
        exp_id = tracker.experiment_id(DATA.experiment, create=False)
        (run,) = tracker.client.search_runs([exp_id], "tags.`bench.kind` = 'seed'")
        yield tracker, run
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fitted(store):
    tracker, run = store
    return retrain(source_from_run(tracker, run.info.run_id))


def test_retraining_a_run_reproduces_its_logged_predictions(store, fitted):
    _, run = store
    assert (fitted.source.data, fitted.source.model, fitted.source.seed) == (DATA, "emdlot", 86)
    logged = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(run.info.artifact_uri + "/predictions.csv")))
    test = fitted.view.take(fitted.split.test)
    assert list(logged["entity"]) == list(test.entity)
    proba = fitted.model.predict_proba(test)
    assert proba.std() > 1e-3  # a real model, not a constant that any retraining would match
    np.testing.assert_allclose(proba, logged[[f"p_{c}" for c in test.class_names]].to_numpy(), rtol=1e-5, atol=1e-6)


def test_command_writes_figures_from_the_attention_and_logs_them_to_the_run(store, fitted, tmp_path, monkeypatch):
    tracker, run = store
    monkeypatch.setattr("bench.explain.PERMUTATION_REPEATS", 1)  # the ranking's quality is not under test here
    out = tmp_path / "explain"
    r = runner.invoke(app, ["explain", "--run", run.info.run_id, "--out", str(out), "--fidelity",
                            "--tracking-uri", tracker.uri], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "Table D.1" in r.output and "Fidelity" in r.output
    for name in ("figure7_attention_shares", "figure8_financial_attention", "figure9_macro_attention"):
        assert (out / f"{name}.png").stat().st_size > 1000
    weights = fitted.model.explain(fitted.view)  # the same model, so the same attention

    shares = pd.read_csv(out / "figure7_attention_shares.csv")
    assert np.allclose(shares.groupby("level")["share"].sum(), 1.0)
    numeric = shares.query("level == 'modality' and name == 'numeric'")["share"].item()
    assert numeric == pytest.approx(weights["modality"][:, 0].mean(), rel=1e-5)

    fig8 = pd.read_csv(out / "figure8_financial_attention.csv")
    hard = weights["cluster"].argmax(1)
    assert sorted(fig8["cluster"].unique()) == sorted(np.unique(hard))
    matrix = fig8[list(QUARTERS)].to_numpy()
    assert np.nanstd(matrix) > 0
    c = fig8["cluster"].iloc[0]
    first = fig8[fig8["cluster"] == c].iloc[0]
    j = fitted.view.feature_names.index(first["indicator"])
    mine = weights["feature_financial"][hard == c, -1, j]  # every firm has a real last step
    assert first["Q-1"] == pytest.approx(mine.mean(), rel=1e-5)

    d1 = pd.read_csv(out / "table_d1_clusters.csv")
    assert d1[list(fitted.view.class_names)].to_numpy().sum() == len(fitted.view) == 300
    assert len(d1) == weights["cluster"].shape[1]

    fid = pd.read_csv(out / "fidelity.csv")
    assert set(fid["ranker"]) == {"attention", "emdlot-permutation", "lightgbm-permutation", "random"}
    truth = fitted.panel.ground_truth
    floor = truth["drivers"].str.split(";").str.len().mean() / fitted.view.n_financial
    expected = fid.query("ranker == 'random' and ranking == 'expected'")
    assert expected["precision@10"].item() == pytest.approx(floor, rel=1e-5)
    assert fid["precision@10"].between(0, 1).all()
    attention = fid.query("ranker == 'attention'").iloc[0]
    assert 0 < attention["driver_mass_in_signal"] < 1 and 0 < attention["signal_quarter_share"] < 1

    logged = {a.path for a in tracker.client.list_artifacts(run.info.run_id, "explain")}
    assert {"explain/figure8_financial_attention.png", "explain/fidelity.csv"} <= logged


def test_heatmap_uses_the_last_eight_steps_and_only_real_quarters():
    alpha = np.zeros((2, 10, 3))
    mask = np.ones((2, 10), dtype=bool)
    mask[1, :7] = False  # firm 1 has three real quarters: Q-3..Q-1
    alpha[0, -1, 0] = alpha[1, -1, 0] = 1.0  # both put everything on feature 0 at the last step
    alpha[0, -3, 1] = 0.5
    alpha[1, -3, 1] = 0.1
    alpha[1, 0, 2] = 9.0  # a padded step (and outside the window): must not count
    m = quarter_matrix(alpha, mask)
    assert m.shape == (3, 8)
    assert m[0, -1] == 1.0 and m[0, :-1].sum() == 0
    assert m[1, -3] == pytest.approx(0.3)
    assert m[1, 0] == 0.0 and m[2].sum() == 0  # Q-8 is averaged over firm 0 alone


def test_a_variant_without_text_or_clustering_gets_the_parts_it_has(fitted, tmp_path):
    weights = {k: v for k, v in fitted.model.explain(fitted.view).items() if k.startswith("feature_")}
    view = fitted.view
    assert attention_shares(weights, view.sections) is None and cluster_table(weights, view) is None
    fig8 = financial_heatmaps(weights, view)
    assert set(fig8["cluster"]) == {"all"} and (fig8["firms"] == len(view)).all() and len(fig8) == 10
    expl = Explanation("ABL-like", weights, None, fig8, None, None)
    assert [p.name for p in write_artefacts(expl, tmp_path)] == ["figure8_financial_attention.csv",
                                                                 "figure8_financial_attention.png"]
    assert "Table D.1" not in summary(expl) and "Figure 8" in summary(expl)


def test_precision_and_rank_correlation_against_drivers():
    truth = np.array([[True, False, True, False]] * 2)
    scores = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 4.0, 2.0, 3.0]])
    assert precision_at_k(scores, truth, 2).tolist() == [0.5, 0.0]
    rho = rank_correlation(np.array([[4.0, 1.0, 3.0, 2.0], [1.0, 4.0, 2.0, 3.0]]), truth)
    assert rho[0] > 0.8 and rho[1] < -0.4
    assert np.isnan(rank_correlation(np.ones((1, 4)), truth[:1])[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "lr"], "model 'lr' has no attention to explain; explainable: emdlot"),
        (["--model", "abl3"], "model 'abl3' has no attention"),
        (["--dataset", "tiny", "--fidelity", "--profile", "quick"], "dataset 'tiny' has none"),
        (["--run", "0123456789abcdef", "--firms", "300"], "drop --firms"),
        (["--run", "0123456789abcdef"], "run '0123456789abcdef' not found"),
    ],
)
def test_one_line_errors(tracking_uri, args, message):
    r = runner.invoke(app, ["explain", *args])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_explainable_models_have_attention_switched_on():
    models = explainable_models()
    assert {"emdlot", "abl1", "abl2"} <= set(models)
    assert not {"abl3", "lstm", "lr"} & set(models)
    assert _context(DataSpec("tiny", ()))[0].ground_truth is None  # the no-ground-truth case above is real
