"""The `bench` command end to end on the tiny test panel, plus its one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from bench.cli import app, parse_seeds

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_run_then_leaderboard_writes_ranked_tables(tracking_uri, tmp_path):
    r = _invoke("run", "--models", "lr,dt", "--dataset", "tiny", "--firms", "90", "--seeds", "2",
                "--profile", "quick", "--jobs", "1")
    assert r.exit_code == 0, r.output
    assert "4 run(s) executed" in r.output
    out = tmp_path / "boards"
    r = _invoke("leaderboard", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "Table 6" in r.output and "Table 7" in r.output and "Synthetic data" in r.output
    md = (out / "tiny-firms90.md").read_text()
    assert "`bench run --models lr,dt" in md and "Valid/attempted" in md
    payload = json.loads((out / "tiny-firms90.json").read_text())
    assert {row["model"] for row in payload["summary"]} == {"lr", "dt"}
    assert (out / "tiny-firms90.csv").exists()
    r = _invoke("run", "--models", "lr,dt", "--dataset", "tiny", "--firms", "90", "--seeds", "2",
                "--profile", "quick", "--jobs", "1")
    assert "0 run(s) executed, 4 already finished" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--models", "lgbm"], "unknown model 'lgbm'"),
        (["run", "--dataset", "simbnd"], "unknown dataset 'simbnd'"),
        (["run", "--seeds", "3,x"], "--seeds '3,x'"),
        (["run", "--seeds", "86"], "write --seeds 86, (trailing comma)"),
        (["run", "--profile", "fast"], "--profile 'fast'"),
        (["run", "--protocol", "paper-v9"], "unknown protocol 'paper-v9'"),
        (["run", "--tracking-uri", "sqlite:////nonexistent/dir/m.db"], "is not writable"),
        (["leaderboard"], "no finished runs"),
    ],
)
def test_one_line_errors_and_nonzero_exit(tracking_uri, args, message):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output


def test_leaderboard_to_unwritable_folder_fails_cleanly(tracking_uri, tmp_path):
    _invoke("run", "--models", "lr", "--dataset", "tiny", "--seeds", "1", "--profile", "quick", "--jobs", "1")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = runner.invoke(app, ["leaderboard", "--out", str(blocker / "sub")])
    assert r.exit_code == 2 and "cannot write leaderboard" in r.output


def test_parse_seeds():
    assert parse_seeds("10") == 10
    assert parse_seeds("86,127") == [86, 127]
    assert parse_seeds("86") == 86
    with pytest.raises(Exception, match="listed twice"):
        parse_seeds("1,1")


def test_list_shows_models_and_datasets():
    r = _invoke("list")
    assert r.exit_code == 0
    for key in ("lr", "svm", "dt", "knn", "rf", "lightgbm", "xgboost", "tiny"):
        assert key in r.output
