"""Dataset description: the paper-style tables, the files and figure, and ``bench data describe``."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli_data import app
from bench.describe import STATS, describe, write_description
from bench.panelio import load_folder

GOOD = Path(__file__).parent / "resources" / "good_panel"
runner = CliRunner()


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return describe(load_folder(GOOD))


def test_classes_table_counts_and_shares(tables: dict[str, pd.DataFrame]) -> None:
    classes = tables["classes"]
    assert classes["count"].to_dict() == {"performing": 4, "extended": 3, "defaulted": 3, "total": 10}
    assert classes["share (%)"].tolist() == [40.0, 30.0, 30.0, 100.0]


def test_lengths_describe_observations_per_entity_and_gaps(tables: dict[str, pd.DataFrame]) -> None:
    lengths = tables["lengths"]
    assert list(lengths.columns) == list(STATS)
    per_entity = lengths.loc["observations per entity"]
    assert (per_entity["count"], per_entity["mean"], per_entity["min"], per_entity["max"]) == (10, 2.5, 2, 4)
    gaps = lengths.loc["months between observations"]
    assert (gaps["count"], gaps["min"], gaps["max"]) == (15, 3, 18)  # 25 rows - 10 entities; P3 skips 18
    assert tables["length_counts"]["entities"].to_dict() == {2: 6, 3: 3, 4: 1}


def test_indicator_tables_follow_tables_a3_a4(tables: dict[str, pd.DataFrame]) -> None:
    fin = tables["financial"]
    assert list(fin.index) == ["ROA", "D/A", "CR"]
    assert list(fin.columns) == [*STATS, "missing (%)"]
    assert fin.loc["D/A", "count"] == 24 and fin.loc["D/A", "missing (%)"] == 4.0
    obs = load_folder(GOOD).observations
    assert fin.loc["CR", "99%"] == pytest.approx(obs["CR"].quantile(0.99))
    assert list(tables["macro"].index) == ["GDP YoY", "M2 YoY"]
    assert tables["macro"].loc["GDP YoY", "min"] == -6.9


def test_events_by_year_and_class(tables: dict[str, pd.DataFrame]) -> None:
    events = tables["events"]
    assert list(events.columns) == ["performing", "extended", "defaulted", "total"]
    assert events.loc[2020].to_dict() == {"performing": 0, "extended": 3, "defaulted": 3, "total": 6}


def test_panel_without_macro_or_events() -> None:
    panel = load_folder(GOOD)
    bare = dataclasses.replace(panel, macro=None, macro_columns=(),
                               entities=panel.entities.assign(event_period=pd.NaT))
    tables = describe(bare)
    assert tables["macro"].empty and list(tables["macro"].columns) == [*STATS, "missing (%)"]
    assert tables["events"].empty


def test_write_description_writes_csv_tables_and_a_png(tmp_path: Path, tables) -> None:
    written = write_description(tables, tmp_path / "out", "panel:some/dir")
    names = sorted(p.name for p in written)
    assert names == sorted([f"panel_some_dir-{k}.csv" for k in tables] + ["panel_some_dir.png"])
    assert (tmp_path / "out" / "panel_some_dir.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = pd.read_csv(tmp_path / "out" / "panel_some_dir-classes.csv", index_col=0)
    assert back["count"].to_dict() == tables["classes"]["count"].to_dict()


def test_describe_cli_prints_every_table() -> None:
    result = runner.invoke(app, ["describe", f"panel:{GOOD}"])
    assert result.exit_code == 0, result.output
    for key in ("overview", "classes", "lengths", "length_counts", "financial", "macro", "events"):
        assert f"== {key}" in result.stdout
    assert "performing        4        40.00" in result.stdout
    assert "SYNTHETIC" not in result.stdout


def test_describe_cli_labels_synthetic_data_and_writes_files(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(GOOD, tmp_path / "sim"))
    with (folder / "panel.toml").open("a") as f:
        f.write("synthetic = true\n")
    result = runner.invoke(app, ["describe", f"panel:{folder}", "--out", str(tmp_path / "desc")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("SYNTHETIC DATA: 'tiny' is simulated")
    assert "yes (simulated data, not real firms)" in result.stdout
    assert len(list((tmp_path / "desc").glob("panel_*sim.png"))) == 1


def test_describe_cli_rejects_options_the_source_does_not_take() -> None:
    result = runner.invoke(app, ["describe", f"panel:{GOOD}", "--firms", "10"])
    assert result.exit_code == 2
    assert "takes no options, got firms" in result.stderr


def test_describe_cli_on_simbond_is_labelled_synthetic() -> None:
    pytest.importorskip("bench.datasets.simbond")
    result = runner.invoke(app, ["describe", "simbond", "--firms", "200", "--data-seed", "3"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("SYNTHETIC DATA")
