"""``bench data``: check a panel folder, describe a dataset, export one as a panel folder.

Heavy imports (pandas, matplotlib) happen inside the commands so ``bench --help`` stays fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from bench.panel import Panel

app = typer.Typer(help="Check, describe and export panel data.", no_args_is_help=True)

Firms = Annotated[int | None, typer.Option(help="simulated datasets: number of firms")]
DataSeed = Annotated[int | None, typer.Option(help="simulated datasets: seed of the data")]


class Format(StrEnum):
    csv = "csv"
    parquet = "parquet"


def _fail(message: str) -> typer.Exit:
    """A user error, reported like the main CLI does: one ``error:`` message, exit code 2."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _load(name: str, firms: int | None, data_seed: int | None) -> Panel:
    from bench.data import DatasetError, load_dataset
    from bench.panel import PanelError

    try:
        return load_dataset(name, firms=firms, data_seed=data_seed)
    except (DatasetError, PanelError) as exc:
        raise _fail(str(exc)) from None


def _synthetic_banner(panel: Panel) -> str:
    return (f"SYNTHETIC DATA: '{panel.name}' is simulated; it holds no real firm or bond, "
            "and numbers computed on it describe the simulator, not a market.")


@app.command()
def validate(
    folder: Annotated[Path, typer.Argument(help="panel folder (see docs/panel-format.md)")],
    min_class_size: Annotated[int, typer.Option(help="fewest entities a class may have")] = 3,
) -> None:
    """Check a panel folder: every problem on stderr (exit 1), or a short summary (exit 0)."""
    from bench.panelio import read_folder

    panel, problems = read_folder(folder, min_class_size)
    if problems:
        for problem in problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(code=1)
    s = panel.summary()
    typer.echo(f"{folder}: OK, panel '{panel.name}'" + (" (synthetic)" if panel.synthetic else ""))
    typer.echo(f"  entities       {s['entities']}")
    typer.echo("  classes        " + ", ".join(f"{k} {v}" for k, v in s["classes"].items()))
    freq = panel.observations["period"].array.freqstr
    typer.echo(f"  periods        {s['periods']} ({freq}), {s['observations']} observations")
    typer.echo(f"  financial      {s['financial']} columns")
    typer.echo(f"  macro          {s['macro']} columns")
    typer.echo(f"  text sections  {', '.join(s['text_sections']) or 'none'}")
    if panel.meta["ignored_columns"]:
        typer.echo(f"  ignored        columns {', '.join(panel.meta['ignored_columns'])}")


@app.command()
def describe(
    name: Annotated[str, typer.Argument(help="dataset: NAME or NAME:ARG, e.g. simbond or panel:DIR")],
    firms: Firms = None,
    data_seed: DataSeed = None,
    out: Annotated[Path | None, typer.Option(help="also write the tables as CSV and a PNG here")] = None,
) -> None:
    """Print the dataset's tables: classes (Table 4), lengths, indicators (Tables A.3/A.4), events."""
    from tabulate import tabulate

    from bench.describe import describe as describe_panel
    from bench.describe import write_description

    panel = _load(name, firms, data_seed)
    tables = describe_panel(panel)
    if panel.synthetic:
        typer.echo(_synthetic_banner(panel) + "\n")
    for key, table in tables.items():
        typer.echo(f"== {key}")
        # object dtype keeps integer columns integer (tabulate would otherwise upcast whole rows)
        typer.echo(tabulate(table.astype(object), headers="keys", floatfmt=",.2f"))
        typer.echo()
    if out is not None:
        for path in write_description(tables, out, name):
            typer.echo(f"wrote {path}")


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="dataset: NAME or NAME:ARG, e.g. simbond")],
    folder: Annotated[Path, typer.Argument(help="folder to write (must be empty unless --overwrite)")],
    firms: Firms = None,
    data_seed: DataSeed = None,
    fmt: Annotated[Format, typer.Option("--format", help="file format of the tables")] = Format.csv,
    overwrite: Annotated[bool, typer.Option(help="replace a non-empty folder")] = False,
) -> None:
    """Write a dataset as a panel folder that panel:FOLDER loads back to the same views."""
    from bench.panelio import export_panel

    panel = _load(name, firms, data_seed)
    try:
        export_panel(panel, folder, fmt.value, overwrite=overwrite)
    except FileExistsError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"wrote '{panel.name}' ({len(panel.entities)} entities, "
               f"{len(panel.observations)} observations, {fmt.value}) to {folder}")
    if panel.synthetic:
        typer.echo(_synthetic_banner(panel) + " panel.toml records it as synthetic.")
