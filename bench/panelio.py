"""The panel folder format: read it, check it, write it (see ``docs/panel-format.md``).

Users bring their own data as a folder of plain tables. Reading checks everything
before building a :class:`~bench.panel.Panel` and reports *all* problems at once, one
line each naming the file, line (CSV) or row (Parquet), column or entity, so a user
fixes a folder in one pass instead of one error per run. Loading never writes;
:func:`export_panel` writes a whole folder or nothing.

Folder layout::

    observations.csv | observations.parquet   entity, period, indicator columns
    labels.csv                                 entity, label[, event_period][, groups...]
    macro.csv | macro.parquet      (optional)  period, macro series
    text.csv | text.parquet        (optional)  entity, section, text
    panel.toml                     (optional)  name, classes, financial, macro, sections,
                                               frequency, synthetic
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.panel import Panel, PanelError

MIN_CLASS_SIZE = 3  # stratified 80/20 split plus a validation slice needs 3 members per class
FORMATS = ("csv", "parquet")
CONFIG_KEYS = ("name", "classes", "financial", "macro", "sections", "frequency", "synthetic")

_QUARTER = re.compile(r"(\d{4})-?Q([1-4])", re.IGNORECASE)
_MONTH = re.compile(r"(\d{4})[-/](\d{1,2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR = re.compile(r"\d{4}")
# cells that mean "missing" in numeric and period columns (elsewhere only an empty cell does)
MISSING_TOKENS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL")
PERIOD_FORMS = "2019Q3, 2019-Q3, 2019-07, 2019/07, 2019-09-30 (ISO date) or 2019"
# period labels that parse back to the same period; other frequencies are written as ISO start dates
_LABELLED_FREQS = ("Q-DEC", "M", "D", "Y-DEC")


@dataclass(frozen=True)
class Problem:
    """One defect in a panel folder; ``str()`` is the one-line message shown to the user."""

    file: str
    message: str
    row: int | None = None  # 1-based: line number in a CSV (header = line 1), row number in Parquet
    column: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", {_unit(self.file)} {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.message}"


# ------------------------------------------------------------------ periods
def _parse_period(value: Any, freq: str) -> pd.Period:
    """One value -> the period at ``freq`` that contains it; ``ValueError`` says why not."""
    if isinstance(value, pd.Period):
        natural = value
    elif isinstance(value, pd.Timestamp):
        natural = pd.Period(value, freq="D")
    else:
        text = str(value).strip()
        if m := _QUARTER.fullmatch(text):
            natural = pd.Period(year=int(m[1]), quarter=int(m[2]), freq="Q")
        elif m := _MONTH.fullmatch(text):
            if not 1 <= int(m[2]) <= 12:
                raise ValueError(f"month {m[2]} is not 1..12")
            natural = pd.Period(year=int(m[1]), month=int(m[2]), freq="M")
        elif _DATE.fullmatch(text):
            natural = pd.Period(pd.Timestamp(text), freq="D")
        elif _YEAR.fullmatch(text):
            natural = pd.Period(year=int(text), freq="Y")
        else:
            raise ValueError(f"expected one of {PERIOD_FORMS}; other date forms are ambiguous")
    start, end = natural.start_time.to_period(freq), natural.end_time.to_period(freq)
    if start != end:
        raise ValueError(f"it spans more than one period at the panel frequency '{freq}'")
    return start


def parse_periods(values: pd.Series, freq: str = "Q") -> tuple[pd.Series, pd.Series]:
    """Parse period labels (quarters, months, ISO dates, years) into ``pd.Period`` at ``freq``.

    Returns the periods (NaT where parsing failed) and, aligned, the reason for each
    failure (missing where it worked), so callers can name every bad cell. Only ISO
    dates are accepted: ``30/09/2019`` and ``09/30/2019`` cannot be told apart.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(values):  # Parquet date/timestamp columns: the day is what counts
        values = values.dt.to_period("D")
    period_of: dict[Any, pd.Period] = {}
    reason_of: dict[Any, str] = {}
    for value in pd.unique(values.dropna()):
        try:
            period_of[value] = _parse_period(value, freq)
        except ValueError as exc:
            reason_of[value] = str(exc)
    periods = pd.Series(pd.PeriodIndex(values.map(period_of).astype(object), freq=freq), index=values.index)
    reasons = values.map(reason_of).astype(object).mask(values.isna(), "the period is empty")
    return periods, reasons


def _period_labels(periods: pd.Series, freq: str) -> pd.Series:
    """Text that :func:`parse_periods` reads back to the same periods (empty for NaT)."""
    idx = pd.PeriodIndex(periods.to_numpy(), freq=freq)
    text = idx.astype(str) if freq in _LABELLED_FREQS else idx.start_time.strftime("%Y-%m-%d")
    return pd.Series(text, index=periods.index).where(periods.notna().to_numpy(), "")


# ------------------------------------------------------------------ reading
def _unit(file: str) -> str:
    return "line" if file.endswith(".csv") else "row"


def _nan_tokens(raw: pd.Series) -> pd.Series:
    """Numeric and period text cells: the usual spellings of "missing" become missing."""
    return raw.where(~raw.str.strip().isin(MISSING_TOKENS)) if raw.dtype == "str" else raw


@dataclass
class _Table:
    file: str
    df: pd.DataFrame

    def row(self, index: Any) -> int:
        """1-based line number (CSV, header = line 1) or row number (Parquet) of a frame index."""
        return int(index) + (2 if self.file.endswith(".csv") else 1)


@dataclass
class _Config:
    name: str
    classes: list[str] | None = None
    financial: list[str] | None = None
    macro: list[str] | None = None
    sections: list[str] | None = None
    frequency: str = "Q"
    synthetic: bool = False


@dataclass
class _Reader:
    """Reads one folder, collecting problems instead of stopping at the first."""

    folder: Path
    min_class_size: int
    problems: list[Problem] = field(default_factory=list)

    def add(self, file: str, message: str, row: int | None = None, column: str | None = None) -> None:
        self.problems.append(Problem(file, message, row, column))

    def first(
        self, table: _Table, bad: pd.Series, message: str, column: str, value: str | None = None,
    ) -> None:
        """Report the first ``bad`` row of ``table`` and how many more; ``{value}`` shows its cell."""
        i = bad.idxmax()
        if value is not None:
            message = message.replace("{value}", repr(table.df.loc[i, value]))
        n = int(bad.sum())
        if n > 1:
            message += f" (and {n - 1} more row{'s' if n > 2 else ''})"
        self.add(table.file, message, table.row(i), column)

    # -------------------------------------------------------------- files
    def config(self) -> _Config:
        cfg = _Config(name=self.folder.resolve().name)
        path = self.folder / "panel.toml"
        if not path.is_file():
            return cfg
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            self.add("panel.toml", f"not valid TOML: {exc}")
            return cfg
        for key, value in raw.items():
            if key not in CONFIG_KEYS:
                self.add("panel.toml", f"unknown key '{key}'; known keys: {', '.join(CONFIG_KEYS)}")
            elif key in ("name", "frequency") and not isinstance(value, str):
                self.add("panel.toml", f"'{key}' must be a string, got {value!r}")
            elif key == "synthetic" and not isinstance(value, bool):
                self.add("panel.toml", f"'synthetic' must be true or false, got {value!r}")
            elif key in ("classes", "financial", "macro", "sections") and not (
                isinstance(value, list) and all(isinstance(v, str | int) for v in value)
            ):
                self.add("panel.toml", f"'{key}' must be a list of names, got {value!r}")
            elif key in ("classes", "financial", "macro", "sections"):
                names = [str(v) for v in value]
                dups = sorted({v for v in names if names.count(v) > 1})
                if dups:
                    self.add("panel.toml", f"'{key}' lists {dups} more than once")
                setattr(cfg, key, names)
            else:
                setattr(cfg, key, value)
        try:
            plain = pd.PeriodDtype(cfg.frequency).freq.n == 1
        except (ValueError, TypeError):
            plain = False
        if not plain:
            self.add("panel.toml", f"frequency '{cfg.frequency}' is not a plain pandas period frequency "
                     "(Q, M, D, Y, Q-MAR, W, ...)")
            cfg.frequency = "Q"
        return cfg

    def table(
        self, stem: str, formats: tuple[str, ...], required: tuple[str, ...], optional: bool,
    ) -> _Table | None:
        """Find and read ``stem.<fmt>``; check its required columns; ``None`` if unusable."""
        expected = " or ".join(f"{stem}.{f}" for f in formats)
        found = [self.folder / f"{stem}.{f}" for f in formats if (self.folder / f"{stem}.{f}").is_file()]
        if len(found) > 1:
            self.add(found[0].name, f"both {' and '.join(f.name for f in found)} exist; keep one")
            return None
        if not found:
            others = sorted(p.name for p in self.folder.glob(f"{stem}.*") if p.is_file())
            if others:
                self.add(others[0], f"unknown format; expected {expected}")
            elif not optional:
                self.add(f"{stem}.{formats[0]}", f"file not found in {self.folder}; expected {expected}")
            return None
        path = found[0]
        try:
            if path.suffix == ".csv":
                # only empty cells are missing here: "NA" may be an entity id or a word in a text
                df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                                 skip_blank_lines=False, encoding="utf-8")
                df = df.dropna(how="all")  # blank lines; the index still maps to line numbers
            else:
                df = pd.read_parquet(path)
        except (ValueError, OSError, UnicodeDecodeError) as exc:  # parse errors of pandas/pyarrow: ValueError
            self.add(path.name, f"cannot be read: {exc}")
            return None
        df.columns = [str(c) for c in df.columns]
        missing = [c for c in required if c not in df.columns]
        for col in missing:
            self.add(path.name, f"missing required column '{col}' (columns are: {', '.join(df.columns)})")
        if missing:
            return None
        table = _Table(path.name, df)
        for col in ("entity", "section"):
            if col in df.columns:
                blank = df[col].isna() | (df[col].astype(str).str.strip() == "")
                if blank.any():
                    self.first(table, blank, f"empty '{col}'", col)
                table.df = table.df.loc[~blank].astype({col: str})
        return table

    # -------------------------------------------------------------- checks
    def periods(self, table: _Table, freq: str, column: str = "period") -> pd.Series:
        raw = _nan_tokens(table.df[column])
        periods, reasons = parse_periods(raw, freq)
        bad = reasons.notna()
        if column != "period":  # optional column: an empty cell means "none"
            bad &= raw.notna()
        if bad.any():
            self.first(table, bad, f"cannot parse period {{value}}: {reasons[bad.idxmax()]}", column, column)
        return periods

    def numeric(self, table: _Table, columns: list[str]) -> pd.DataFrame:
        """Columns as float64; report the first non-numeric or infinite cell of each."""
        out = {}
        for col in columns:
            raw = _nan_tokens(table.df[col])
            values = pd.to_numeric(raw, errors="coerce").astype("float64")
            bad = (raw.notna() & values.isna()) | np.isinf(values)
            if bad.any():
                self.first(table, bad, "non-numeric value {value}; expected a finite number, or an empty "
                           "cell for a missing value", col, col)
            out[col] = values.where(~bad)
        return pd.DataFrame(out, index=table.df.index)

    def duplicates(self, table: _Table, keys: pd.DataFrame, what: str) -> None:
        dup = keys.duplicated() & keys.notna().all(axis=1)
        if dup.any():
            i = dup.idxmax()
            first = keys.index[(keys == keys.loc[i]).all(axis=1)][0]
            key = ", ".join(str(v) for v in keys.loc[i])
            n = int(dup.sum())
            more = f" (and {n - 1} more)" if n > 1 else ""
            where = f"{_unit(table.file)} {table.row(first)}"
            self.add(table.file, f"duplicate {what} ({key}); first at {where}{more}", table.row(i))

    def financial_columns(self, table: _Table, cfg: _Config) -> tuple[list[str], list[str]]:
        """The indicator columns (declared, or else every column holding numbers) and the ignored rest."""
        others = [c for c in table.df.columns if c not in ("entity", "period")]
        if cfg.financial is not None:
            for col in cfg.financial:
                if col not in table.df.columns:
                    self.add(table.file, f"missing column '{col}' declared in panel.toml 'financial'")
            financial = [c for c in cfg.financial if c in table.df.columns]
        else:
            cells = {c: _nan_tokens(table.df[c]) for c in others}
            financial = [
                c for c in others
                if cells[c].isna().all() or pd.to_numeric(cells[c], errors="coerce").notna().any()
            ]
            if not financial:
                self.add(table.file, "no numeric indicator columns besides 'entity' and 'period'")
        return financial, [c for c in others if c not in financial]

    def classes(self, table: _Table, cfg: _Config) -> tuple[list[str], pd.Series]:
        """Class names and each entity's class index; labels may be names or integer indices."""
        raw = table.df["label"].str.strip()
        blank = raw.isna() | (raw == "")
        if blank.any():
            self.first(table, blank, "empty label", "label")
        given = raw[~blank]
        if cfg.classes is None:  # sorted unique labels; integers sort as numbers
            keys = given.astype(int) if given.str.fullmatch(r"-?\d+").all() else given
            uniq = sorted(keys.unique())
            names = [str(v) for v in uniq]
            index = keys.map({v: i for i, v in enumerate(uniq)})
        else:
            names = cfg.classes
            index = given.map({n: i for i, n in enumerate(names)})
            as_int = pd.to_numeric(given.where(given.str.fullmatch(r"\d+")), errors="coerce")
            index = index.fillna(as_int.where(as_int < len(names)))
            unknown = index.isna().reindex(table.df.index, fill_value=False)
            if unknown.any():
                self.first(table, unknown, f"unknown label {{value}}; panel.toml classes are {names} "
                           f"(give a name or an index 0..{len(names) - 1})", "label", "label")
        index = index.reindex(table.df.index)
        if len(names) < 2:
            self.add(table.file, f"fewer than two classes: {names}; a classifier needs two", None, "label")
        if len(names) < 2 or index.isna().any():  # class sizes are unknown until every label is
            return names, index
        counts = index.dropna().astype(int).value_counts()
        for i, name in enumerate(names):
            n = int(counts.get(i, 0))
            if n < self.min_class_size:
                members = f"{n} entit{'y' if n == 1 else 'ies'}"
                self.add(table.file, f"class '{name}' has {members}; the stratified 80/20 split with a "
                         f"validation slice needs at least {self.min_class_size}", None, "label")
        return names, index

    def cross_check(self, obs: _Table, lab: _Table) -> None:
        orphans = ~lab.df["entity"].isin(set(obs.df["entity"]))
        if orphans.any():
            message = f"label for entity {{value}} with no rows in {obs.file}"
            self.first(lab, orphans, message, "entity", "entity")
        unlabelled = ~obs.df["entity"].isin(set(lab.df["entity"]))
        if unlabelled.any():
            n = obs.df.loc[unlabelled, "entity"].nunique()
            i = unlabelled.idxmax()
            self.add(obs.file, f"observations for entity '{obs.df.loc[i, 'entity']}' which has no label in "
                     f"{lab.file}" + (f" ({n} such entities)" if n > 1 else ""), obs.row(i), "entity")

    def coverage(self, mac: _Table, macro_periods: pd.Series, obs: _Table, obs_periods: pd.Series) -> None:
        uncovered = sorted(set(obs_periods.dropna()) - set(macro_periods.dropna()))
        if uncovered:
            more = f" (and {len(uncovered) - 1} more periods)" if len(uncovered) > 1 else ""
            self.add(mac.file, f"no row for period {uncovered[0]}, which {obs.file} uses{more}; "
                     "macro must cover every observation period", column="period")

    def text(self, txt: _Table, lab: _Table | None, cfg: _Config) -> tuple[pd.DataFrame, list[str]]:
        """Check the text table; texts may span lines, so problems name entity and section, not lines."""
        df = txt.df

        def name_first(bad: pd.Series, message: str, column: str) -> None:
            if bad.any():
                r = df.loc[bad.idxmax()]
                more = f" (and {int(bad.sum()) - 1} more)" if bad.sum() > 1 else ""
                message = message.format(entity=r["entity"], section=r["section"])
                self.add(txt.file, message + more, column=column)

        name_first(df["text"].isna() | (df["text"].astype(str).str.strip() == ""),
                   "empty text for entity '{entity}' section '{section}'", "text")
        name_first(df.duplicated(["entity", "section"]),
                   "entity '{entity}' has section '{section}' more than once", "section")
        if lab is not None:
            name_first(~df["entity"].isin(set(lab.df["entity"])),
                       "text for entity '{entity}' which has no label in " + lab.file, "entity")
        present = list(pd.unique(df["section"]))
        sections = cfg.sections if cfg.sections is not None else present
        extra = [s for s in present if s not in sections]
        if extra:
            self.add(txt.file, f"section(s) {extra} not in panel.toml 'sections' {sections}", None, "section")
        return df[["entity", "section", "text"]].reset_index(drop=True), sections

    # -------------------------------------------------------------- whole folder
    def read(self) -> Panel | None:
        if not self.folder.is_dir():
            self.add(str(self.folder), "folder not found")
            return None
        cfg = self.config()
        obs = self.table("observations", FORMATS, ("entity", "period"), optional=False)
        lab = self.table("labels", ("csv",), ("entity", "label"), optional=False)
        mac = self.table("macro", FORMATS, ("period",), optional=True)
        txt = self.table("text", FORMATS, ("entity", "section", "text"), optional=True)

        observations = financial = None
        ignored: list[str] = []
        if obs is not None:
            periods = self.periods(obs, cfg.frequency)
            financial, ignored = self.financial_columns(obs, cfg)
            values = self.numeric(obs, financial)
            observations = pd.concat([obs.df[["entity"]], periods.rename("period"), values], axis=1)
            self.duplicates(obs, observations[["entity", "period"]], "observation for (entity, period)")

        entities = class_names = None
        if lab is not None:
            self.duplicates(lab, lab.df[["entity"]], "label for entity")
            class_names, index = self.classes(lab, cfg)
            if "event_period" in lab.df.columns:
                event_period = self.periods(lab, cfg.frequency, "event_period")
            else:
                event_period = pd.Series(pd.NaT, index=lab.df.index, dtype=pd.PeriodDtype(cfg.frequency))
            groups = lab.df.drop(columns=["entity", "label", "event_period"], errors="ignore")
            entities = pd.concat([lab.df[["entity"]], index.rename("label"),
                                  event_period.rename("event_period"), groups], axis=1)

        if obs is not None and lab is not None:
            self.cross_check(obs, lab)

        macro, macro_columns = None, []
        if mac is not None:
            if cfg.macro is None:
                macro_columns = [c for c in mac.df.columns if c != "period"]
            else:
                for col in [c for c in cfg.macro if c not in mac.df.columns]:
                    self.add(mac.file, f"missing column '{col}' declared in panel.toml 'macro'")
                macro_columns = [c for c in cfg.macro if c in mac.df.columns]
            macro = pd.concat([self.periods(mac, cfg.frequency).rename("period"),
                               self.numeric(mac, macro_columns)], axis=1)
            self.duplicates(mac, macro[["period"]], "macro row for period")
            if observations is not None:
                self.coverage(mac, macro["period"], obs, observations["period"])
        elif cfg.macro:
            self.add("macro.csv", f"file not found, but panel.toml declares macro columns {cfg.macro}")

        text, sections = None, []
        if txt is not None:
            text, sections = self.text(txt, lab, cfg)

        if self.problems:
            return None
        try:
            return Panel(
                name=cfg.name,
                entities=entities.reset_index(drop=True).astype({"label": "int64"}),
                observations=observations.reset_index(drop=True),
                class_names=tuple(class_names),
                financial=tuple(financial),
                macro=None if macro is None else macro.reset_index(drop=True),
                macro_columns=tuple(macro_columns),
                text=text,
                sections=tuple(sections),
                synthetic=cfg.synthetic,
                meta={"source": "panel", "path": str(self.folder), "ignored_columns": ignored},
            )
        except PanelError as exc:  # a rule of Panel this reader does not check itself
            self.add(str(self.folder), str(exc))
            return None


def read_folder(
    path: str | os.PathLike[str], min_class_size: int = MIN_CLASS_SIZE,
) -> tuple[Panel | None, list[Problem]]:
    """The panel in ``path`` and every problem found; the panel is ``None`` unless there are none.

    ``min_class_size`` is the fewest entities a class may have; the default 3 is what the
    protocol's stratified 80/20 split plus a validation slice needs.
    """
    reader = _Reader(Path(path), min_class_size)
    panel = reader.read()
    return panel, reader.problems


def validate_folder(path: str | os.PathLike[str], min_class_size: int = MIN_CLASS_SIZE) -> list[Problem]:
    """Every problem that stops ``path`` from loading as a panel (an empty list: it loads)."""
    return read_folder(path, min_class_size)[1]


def load_folder(path: str | os.PathLike[str], min_class_size: int = MIN_CLASS_SIZE) -> Panel:
    """Load a panel folder; :class:`~bench.panel.PanelError` lists every problem, one per line."""
    panel, problems = read_folder(path, min_class_size)
    if panel is None:
        header = f"panel folder {path} has {len(problems)} problem(s):"
        raise PanelError("\n".join([header, *map(str, problems)]))
    return panel


# ------------------------------------------------------------------ writing
def _toml_list(names: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(n, ensure_ascii=False) for n in names) + "]"


def _write_table(df: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)


def export_panel(
    panel: Panel, path: str | os.PathLike[str], fmt: str = "csv", overwrite: bool = False,
) -> Path:
    """Write ``panel`` as a panel folder that :func:`load_folder` reads back to the same views.

    The folder appears whole or not at all: files go to a temporary sibling folder that is
    renamed into place. A non-empty ``path`` is refused unless ``overwrite``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}'; expected one of {', '.join(FORMATS)}")
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"{target} is not empty; choose an empty folder or pass overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        freq = panel.observations["period"].array.freqstr  # period alias (Panel.freq is the offset's)
        obs = panel.observations[["entity", "period", *panel.financial]]
        _write_table(obs.assign(period=_period_labels(obs["period"], freq)), tmp / f"observations.{fmt}")
        ent = panel.entities
        labels = ent.assign(label=[panel.class_names[i] for i in panel.labels],
                            event_period=_period_labels(ent["event_period"], freq))
        labels.to_csv(tmp / "labels.csv", index=False)
        lines = [f"name = {json.dumps(panel.name, ensure_ascii=False)}",
                 f"frequency = {json.dumps(freq)}",
                 f"synthetic = {'true' if panel.synthetic else 'false'}",
                 f"classes = {_toml_list(panel.class_names)}",
                 f"financial = {_toml_list(panel.financial)}"]
        if panel.macro is not None:
            macro = panel.macro[["period", *panel.macro_columns]]
            _write_table(macro.assign(period=_period_labels(macro["period"], freq)), tmp / f"macro.{fmt}")
            lines.append(f"macro = {_toml_list(panel.macro_columns)}")
        if panel.text is not None:
            _write_table(panel.text[["entity", "section", "text"]], tmp / f"text.{fmt}")
            lines.append(f"sections = {_toml_list(panel.sections)}")
        (tmp / "panel.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if target.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            target.rename(old / target.name)
            tmp.rename(target)
            shutil.rmtree(old)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
