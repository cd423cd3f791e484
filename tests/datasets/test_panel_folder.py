"""The panel folder format: reading, every validation problem, the ``panel`` source, export round trips."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli_data import app
from bench.data import DatasetError, load_dataset
from bench.panel import Panel, PanelError
from bench.panelio import export_panel, load_folder, parse_periods, validate_folder
from bench.views import build_raw_sequences

GOOD = Path(__file__).parent / "resources" / "good_panel"
runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the good panel folder, to break."""
    return Path(shutil.copytree(GOOD, tmp_path / "panel"))


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def append(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(line + "\n")


def drop_lines(path: Path, prefix: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.startswith(prefix)))


def single_class(d: Path) -> None:
    (d / "panel.toml").unlink()
    labels = pd.read_csv(d / "labels.csv", dtype=str, keep_default_na=False)
    labels.assign(label="performing").to_csv(d / "labels.csv", index=False)


# (id, edit of the good folder, the one problem line it must produce)
DEFECTS: list[tuple[str, Callable[[Path], None], str]] = [
    ("observations-missing", lambda d: (d / "observations.csv").unlink(),
     "observations.csv: file not found"),
    ("labels-missing", lambda d: (d / "labels.csv").unlink(),
     "labels.csv: file not found"),
    ("unknown-format", lambda d: (d / "observations.csv").rename(d / "observations.xlsx"),
     "observations.xlsx: unknown format; expected observations.csv or observations.parquet"),
    ("missing-column", lambda d: replace(d / "observations.csv", "entity,period,", "entity,quarter,"),
     "observations.csv: missing required column 'period'"),
    ("duplicate-observation", lambda d: append(d / "observations.csv", "P1,2019-08,1.0,2.0,3.0"),
     "observations.csv, line 27: duplicate observation for (entity, period) (P1, 2019Q3); first at line 3"),
    ("unparsable-period", lambda d: replace(d / "observations.csv", "P3,2019-06,", "P3,30/06/2019,"),
     "observations.csv, line 10, column 'period': cannot parse period '30/06/2019'"),
    ("non-numeric", lambda d: replace(d / "observations.csv", "P2,2019-Q4,4.2,", "P2,2019-Q4,4.2x,"),
     "observations.csv, line 7, column 'ROA': non-numeric value '4.2x'"),
    ("label-without-observations", lambda d: append(d / "labels.csv", "P5,performing,,utilities"),
     "labels.csv, line 12, column 'entity': label for entity 'P5' with no rows in observations.csv"),
    ("observations-without-label", lambda d: append(d / "observations.csv", "X1,2019Q1,1,2,3"),
     "observations.csv, line 27, column 'entity': observations for entity 'X1' which has no label"),
    ("fewer-than-two-classes", single_class,
     "labels.csv, column 'label': fewer than two classes: ['performing']"),
    ("class-too-small", lambda d: [drop_lines(d / f, "D3,") for f in ("labels.csv", "observations.csv")],
     "labels.csv, column 'label': class 'defaulted' has 2 entities; the stratified 80/20 split with a "
     "validation slice needs at least 3"),
    ("macro-gap", lambda d: drop_lines(d / "macro.csv", "2019Q3,"),
     "macro.csv, column 'period': no row for period 2019Q3, which observations.csv uses"),
    ("empty-text", lambda d: replace(d / "text.csv", "Liquidity is tight; short-term debt is large.", ""),
     "text.csv, column 'text': empty text for entity 'E1' section 'Risk Factors'"),
    ("unknown-label", lambda d: replace(d / "labels.csv", "E2,extended,", "E2,bankrupt,"),
     "labels.csv, line 7, column 'label': unknown label 'bankrupt'; panel.toml classes are "
     "['performing', 'extended', 'defaulted']"),
    ("bad-toml-key", lambda d: append(d / "panel.toml", "clases = []"),
     "panel.toml: unknown key 'clases'"),
    ("infinite-value", lambda d: replace(d / "macro.csv", "2020Q2,3.1,", "2020Q2,inf,"),
     "macro.csv, line 7, column 'GDP YoY': non-numeric value 'inf'; expected a finite number,"),
]


@pytest.mark.parametrize(("edit", "expected"), [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS])
def test_validate_cli_reports_each_defect_on_one_line(folder: Path, edit, expected: str) -> None:
    edit(folder)
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected), lines[0]


def test_validate_cli_summarises_good_folder() -> None:
    result = runner.invoke(app, ["validate", str(GOOD)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    out = result.stdout
    assert "OK, panel 'tiny'" in out
    assert "entities       10" in out
    assert "performing 4, extended 3, defaulted 3" in out
    assert "2019Q1..2020Q4 (Q-DEC), 25 observations" in out
    assert "financial      3 columns" in out
    assert "macro          2 columns" in out
    assert "Important Notice, Risk Factors" in out


def test_all_problems_are_collected_and_loading_lists_them(folder: Path) -> None:
    for _, edit, _ in (DEFECTS[6], DEFECTS[7], DEFECTS[11], DEFECTS[13]):
        edit(folder)
    problems = [str(p) for p in validate_folder(folder)]
    assert len(problems) == 4, problems
    with pytest.raises(PanelError) as err:
        load_folder(folder)
    lines = str(err.value).splitlines()
    assert lines[0].endswith("has 4 problem(s):")
    assert lines[1:] == problems


def test_good_folder_reads_every_period_and_label_form() -> None:
    panel = load_folder(GOOD)
    assert panel.name == "tiny"
    assert panel.class_names == ("performing", "extended", "defaulted")
    ent = panel.entities.set_index("entity")
    assert ent.loc["P4", "label"] == 0 and ent.loc["D3", "label"] == 2  # integer labels index the classes
    events = [str(ent.loc[e, "event_period"]) for e in ("E1", "E2", "E3", "D1", "D2")]
    assert events == ["2020Q4"] * 4 + ["2020Q3"]
    assert ent.loc["P1", "industry"] == "utilities"
    obs = panel.observations.set_index("entity")
    assert [str(p) for p in obs.loc["P3", "period"]] == ["2019Q1", "2019Q2", "2020Q4"]  # months
    assert [str(p) for p in obs.loc["P4", "period"]] == ["2019Q4", "2020Q2"]  # ISO dates
    assert np.isnan(obs.loc["P2", "CR"].iloc[1])  # "NA" is a missing cell
    assert panel.financial == ("ROA", "D/A", "CR")
    assert panel.macro_columns == ("GDP YoY", "M2 YoY")
    assert panel.sections == ("Important Notice", "Risk Factors")
    assert "Ample bank credit lines." in panel.text["text"].iloc[1]  # a text over two lines
    assert build_raw_sequences(panel).X.shape == (10, 39, 5)


def test_two_class_panel_with_integer_labels_and_no_toml(tmp_path: Path) -> None:
    pd.DataFrame({"entity": [f"f{i}" for i in range(6)], "label": [0, 0, 0, 1, 1, 1]}).to_csv(
        tmp_path / "labels.csv", index=False)
    obs = pd.DataFrame({"entity": [f"f{i}" for i in range(6) for _ in range(2)],
                        "period": ["2020-01", "2020-04"] * 6, "x": np.arange(12.0), "note": "text"})
    obs.to_csv(tmp_path / "observations.csv", index=False)
    panel = load_folder(tmp_path)
    assert panel.class_names == ("0", "1")
    assert panel.class_counts() == {"0": 3, "1": 3}
    assert panel.financial == ("x",)
    assert panel.meta["ignored_columns"] == ["note"]
    assert panel.macro is None and panel.text is None


def test_min_class_size_is_a_parameter(folder: Path) -> None:
    for name in ("labels.csv", "observations.csv"):
        drop_lines(folder / name, "D3,")
    assert len(validate_folder(folder)) == 1
    assert validate_folder(folder, min_class_size=2) == []


def test_unknown_labels_do_not_also_report_class_sizes(folder: Path) -> None:
    replace(folder / "labels.csv", "E2,extended,", "E2,7,")
    assert [p.message.split(";")[0] for p in validate_folder(folder)] == ["unknown label '7'"]


@pytest.mark.parametrize(("value", "freq", "expected"), [
    ("2019Q3", "Q", "2019Q3"), ("2019-Q3", "Q", "2019Q3"), ("2019q3", "Q", "2019Q3"),
    (" 2019Q3 ", "Q", "2019Q3"),
    ("2019-07", "Q", "2019Q3"), ("2019/07", "Q", "2019Q3"), ("2019-09-30", "Q", "2019Q3"),
    ("2019-07", "M", "2019-07"), ("2019-09-30", "M", "2019-09"), ("2019-09-30", "D", "2019-09-30"),
    ("2019", "Y", "2019"), ("2019-05-15", "Q-MAR", "2020Q1"),
])
def test_parse_periods_accepts_quarters_months_iso_dates(value: str, freq: str, expected: str) -> None:
    periods, reasons = parse_periods(pd.Series([value]), freq)
    assert pd.isna(reasons.iloc[0])
    assert str(periods.iloc[0]) == expected


@pytest.mark.parametrize(("value", "freq", "reason"), [
    ("30/09/2019", "Q", "other date forms are ambiguous"),
    ("09/30/2019", "Q", "other date forms are ambiguous"),
    ("2019Q5", "Q", "expected one of"),
    ("2019-13", "Q", "month 13 is not 1..12"),
    ("2019-02-30", "Q", "day is out of range"),
    ("2019Q3", "M", "spans more than one period"),
    (None, "Q", "the period is empty"),
])
def test_parse_periods_says_why_a_value_fails(value: str | None, freq: str, reason: str) -> None:
    periods, reasons = parse_periods(pd.Series([value], dtype=object), freq)
    assert pd.isna(periods.iloc[0])
    assert reason in reasons.iloc[0]


@pytest.mark.parametrize("values", [
    pd.Series([pd.Timestamp("2019-07-01"), pd.Timestamp("2019-09-30 23:00")]),
    pd.Series(pd.to_datetime(["2019-07-01", "2019-09-30"])).dt.tz_localize("UTC"),
    pd.Series(pd.PeriodIndex(["2019-07", "2019-09"], freq="M")),
    pd.Series([pd.Timestamp("2019-07-01").date(), pd.Timestamp("2019-09-30").date()]),
], ids=["datetime", "datetime-tz", "period", "date"])
def test_parse_periods_takes_typed_parquet_columns(values: pd.Series) -> None:
    periods, reasons = parse_periods(values, "Q")
    assert reasons.isna().all()
    assert [str(p) for p in periods] == ["2019Q3", "2019Q3"]


def test_monthly_frequency_rejects_quarter_labels(folder: Path) -> None:
    replace(folder / "panel.toml", 'frequency = "Q"', 'frequency = "M"')
    messages = [str(p) for p in validate_folder(folder)]
    assert any("cannot parse period '2019Q1': it spans more than one period at the panel frequency 'M'" in m
               for m in messages), messages


def test_parquet_tables_load_like_csv_and_name_rows(folder: Path) -> None:
    for stem in ("observations", "macro", "text"):
        pd.read_csv(folder / f"{stem}.csv", dtype=str).to_parquet(folder / f"{stem}.parquet")
        (folder / f"{stem}.csv").unlink()
    panel = load_folder(folder)
    assert build_raw_sequences(panel).X.shape == (10, 39, 5)
    replace_parquet = pd.read_parquet(folder / "observations.parquet")
    replace_parquet.loc[4, "CR"] = "n/a?"
    replace_parquet.to_parquet(folder / "observations.parquet")
    assert [str(p) for p in validate_folder(folder)] == [
        "observations.parquet, row 5, column 'CR': non-numeric value 'n/a?'; expected a finite number, or an "
        "empty cell for a missing value"]


def test_two_formats_of_one_table_are_ambiguous(folder: Path) -> None:
    pd.read_csv(folder / "macro.csv").to_parquet(folder / "macro.parquet")
    assert [str(p) for p in validate_folder(folder)] == [
        "macro.csv: both macro.csv and macro.parquet exist; keep one"]


def test_missing_folder_is_one_problem(tmp_path: Path) -> None:
    assert [p.message for p in validate_folder(tmp_path / "nope")] == ["folder not found"]


# ------------------------------------------------------------------ the `panel` source
def test_panel_source_loads_a_folder() -> None:
    assert load_dataset(f"panel:{GOOD}").class_counts() == {"performing": 4, "extended": 3, "defaulted": 3}


def test_panel_source_needs_a_folder() -> None:
    with pytest.raises(DatasetError, match="needs a folder: write panel:DIR"):
        load_dataset("panel")


def test_panel_source_refuses_simulator_options() -> None:
    with pytest.raises(DatasetError, match="takes no options, got data_seed, firms"):
        load_dataset(f"panel:{GOOD}", firms=10, data_seed=1)
    assert load_dataset(f"panel:{GOOD}", firms=None).name == "tiny"  # unset CLI options are dropped


# ------------------------------------------------------------------ export
def make_panel(freq: str = "Q") -> Panel:
    """A hand-built irregular panel: gaps, late starts, missing cells, events, groups, macro, text."""
    rng = np.random.default_rng(7)
    periods = pd.period_range("2015-01-01", periods=16, freq=freq)
    ids = ["007", *(f"F{i:02d}" for i in range(1, 12))]
    labels = [0] * 6 + [1] * 3 + [2] * 3
    rows, events = [], []
    for i, entity in enumerate(ids):
        kept = np.sort(rng.choice(len(periods) - 4, size=rng.integers(2, 9), replace=False))
        rows += [(entity, periods[k]) for k in kept]
        last_end = periods[kept[-1]].end_time
        events.append((last_end + pd.DateOffset(months=9)).to_period(freq) if labels[i] else pd.NaT)
    obs = pd.DataFrame(rows, columns=["entity", "period"])
    values = rng.standard_t(2, size=(len(obs), 3)) * [1.0, 1e4, 1e-3]
    values[rng.random(values.shape) < 0.15] = np.nan
    obs[["ROA", "TD", "MOPM"]] = values
    macro = pd.DataFrame({"period": periods, "GDP YoY": rng.normal(5, 2, len(periods)),
                          "M2": rng.normal(2e5, 5e4, len(periods))})
    text = pd.DataFrame({
        "entity": ["007", "007", "F07", "F10"],
        "section": ["Important Notice", "Risk Factors", "Risk Factors", "Important Notice"],
        "text": ['Stable, "prudent" issuer.', "Refinancing risk:\nmoderate.", "Liquidity — 流动性", "x"],
    })
    entities = pd.DataFrame({"entity": ids, "label": labels,
                             "event_period": pd.Series(events, dtype=pd.PeriodDtype(freq)),
                             "industry": ["energy", "utilities"] * 6})
    return Panel(name="handmade", entities=entities, observations=obs,
                 class_names=("performing", "extended", "defaulted"), financial=("ROA", "TD", "MOPM"),
                 macro=macro, macro_columns=("GDP YoY", "M2"), text=text,
                 sections=("Important Notice", "Risk Factors"), synthetic=True)


def assert_same_views(a: Panel, b: Panel) -> None:
    ra, rb = build_raw_sequences(a), build_raw_sequences(b)
    for name in ("X", "mask", "dt", "last_month", "y", "entity"):
        np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name), err_msg=name)  # NaN == NaN here
    assert ra.feature_names == rb.feature_names and ra.n_financial == rb.n_financial
    assert ra.class_names == rb.class_names
    assert ra.texts.keys() == rb.texts.keys()
    for sec in ra.texts:
        np.testing.assert_array_equal(ra.texts[sec], rb.texts[sec])


@pytest.mark.parametrize(("fmt", "freq"), [("csv", "Q"), ("parquet", "Q"), ("csv", "M"), ("csv", "Q-MAR")])
def test_export_round_trip_gives_identical_views(tmp_path: Path, fmt: str, freq: str) -> None:
    panel = make_panel(freq)
    out = export_panel(panel, tmp_path / "out", fmt=fmt)
    assert (out / f"observations.{fmt}").is_file() and (out / "panel.toml").is_file()
    back = load_folder(out)
    assert_same_views(panel, back)
    assert back.name == "handmade" and back.synthetic
    assert back.sections == panel.sections and back.macro_columns == panel.macro_columns
    assert back.entities["industry"].tolist() == panel.entities["industry"].tolist()


def test_export_round_trip_of_simbond(tmp_path: Path) -> None:
    pytest.importorskip("bench.datasets.simbond")
    panel = load_dataset("simbond", firms=200)
    assert_same_views(panel, load_folder(export_panel(panel, tmp_path / "simbond")))


def test_export_refuses_a_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty"):
        export_panel(make_panel(), target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    export_panel(make_panel(), target, overwrite=True)
    assert not (target / "keep.txt").exists() and (target / "labels.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left behind


def test_export_into_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    assert validate_folder(export_panel(make_panel(), tmp_path / "out")) == []


def test_export_writes_nothing_on_failure(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format 'xlsx'"):
        export_panel(make_panel(), tmp_path / "out", fmt="xlsx")
    broken = make_panel()
    object.__setattr__(broken, "financial", ("ROA", "absent"))  # fails halfway through writing
    with pytest.raises(KeyError):
        export_panel(broken, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_export_cli_writes_a_folder_that_validates(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", f"panel:{GOOD}", str(tmp_path / "out"), "--format", "parquet"])
    assert result.exit_code == 0, result.output
    assert "wrote 'tiny' (10 entities, 25 observations, parquet)" in result.stdout
    assert runner.invoke(app, ["validate", str(tmp_path / "out")]).exit_code == 0
    again = runner.invoke(app, ["export", f"panel:{GOOD}", str(tmp_path / "out")])
    assert again.exit_code == 2 and "is not empty" in again.stderr


def test_cli_reports_dataset_errors_without_traceback() -> None:
    result = runner.invoke(app, ["export", "panel", "somewhere"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: dataset 'panel' needs a folder")
