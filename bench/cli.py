"""The ``bench`` command. Sub-commands import their heavy modules lazily, so ``--help`` is instant."""

from __future__ import annotations

import logging
import os
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bench import cli_data, cli_tune

if TYPE_CHECKING:
    from bench.tracking import Tracker

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="credit-seq-bench: benchmark credit-default models on irregular firm panels.")


class UserError(Exception):
    """An error that is the user's to fix: printed as one line, exit code 2."""


def command_line(ctx: typer.Context) -> str:
    """The invoked command with every option the user set explicitly (for headers and tags)."""
    parts = ["bench", ctx.info_name or ""]
    for p in ctx.command.params:
        source = getattr(ctx.get_parameter_source(p.name), "name", "")
        if source in ("COMMANDLINE", "ENVIRONMENT"):
            flag = p.opts[0] if p.opts and p.opts[0].startswith("-") else ""
            parts += [flag, str(ctx.params[p.name])] if flag else [str(ctx.params[p.name])]
    return shlex.join(parts)


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def _tracker(uri: str | None) -> Tracker:
    """The tracking store of ``--tracking-uri``; MLflow's own INFO logging (set on import) is quietened."""
    import mlflow  # noqa: F401  (importing it configures the logger quietened here)

    from bench.tracking import Tracker, resolve_tracking_uri

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return Tracker(resolve_tracking_uri(uri))


def _user_errors() -> tuple[type[Exception], ...]:
    from bench.data import DatasetError
    from bench.leaderboard import LeaderboardError
    from bench.panel import PanelError
    from bench.protocol import ProtocolError
    from bench.registry import RegistryError
    from bench.split import SplitError
    from bench.tracking import TrackingError
    from bench.tune import TuneError

    return (UserError, DatasetError, LeaderboardError, PanelError, ProtocolError, RegistryError, SplitError,
            TrackingError, TuneError)


def default_jobs() -> int:
    """Cores // threads per task (``bench.adapter.task_threads``, 1 by default): fills the machine
    without making the numbers depend on it."""
    from bench.adapter import task_threads

    return max(1, (os.cpu_count() or 1) // task_threads())


def parse_seeds(text: str) -> int | list[int]:
    """``"10"`` = ten valid runs (paper seeds, then extra ones); ``"86,127"`` = exactly these seeds."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"--seeds {text!r}: expected a count like 10 or a list like 86,127") from None
    if not values or any(v < 0 for v in values):
        raise UserError(f"--seeds {text!r}: expected a positive count or non-negative seeds")
    if len(parts) == 1 and "," not in text:
        if values[0] == 0:
            raise UserError("--seeds 0: need at least one run")
        return values[0]
    if len(set(values)) != len(values):
        raise UserError(f"--seeds {text!r}: a seed is listed twice")
    return values


@app.command()
def run(
    ctx: typer.Context,
    models: Annotated[str, typer.Option(help="'all', a group (classic, deep, ablations) or names: lr,rf")] = "all",
    dataset: Annotated[str, typer.Option(help="'simbond' or 'panel:DIR'")] = "simbond",
    seeds: Annotated[str, typer.Option(help="valid runs wanted (10) or an explicit list (86,127)")] = "10",
    jobs: Annotated[int | None, typer.Option(min=1, help="parallel (model, seed) tasks, one thread each "
                                                     "(default: one per core)", show_default=False)] = None,
    firms: Annotated[int | None, typer.Option(help="simbond: number of firms")] = None,
    event_rate: Annotated[float | None, typer.Option(help="simbond: share of firms with an event")] = None,
    data_seed: Annotated[int | None, typer.Option(help="simbond: generator seed")] = None,
    profile: Annotated[str, typer.Option(help="'paper' (Table 5) or 'quick' (small, for tests)")] = "paper",
    protocol: Annotated[str, typer.Option(help="protocol name or .toml file")] = "paper-v1",
    params: Annotated[str, typer.Option(help="'paper' (adapter defaults = Table 5), 'tuned' (best trial of "
                                            "each model's `bench tune` study) or a TOML file of \\[model] "
                                            "tables")] = "paper",
    storage: Annotated[str | None, typer.Option(help="Optuna storage for --params tuned "
                                                     "(default sqlite:///optuna.db)")] = None,
    executor: Annotated[str, typer.Option(help="'local' (process pool of --jobs) or 'dask'")] = "local",
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address tcp://HOST:PORT "
                                                       "(default: a LocalCluster of --jobs workers)")] = None,
    max_attempts: Annotated[int | None, typer.Option(min=1, help="cap on seeds tried per model")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow URI (default: $MLFLOW_TRACKING_URI "
                                                          "or sqlite:///mlflow.db)")] = None,
    compare: Annotated[bool, typer.Option(help="with --params tuned or a file: also run the default parameters "
                                               "on the same seeds (finished runs reused) and print both test "
                                               "composites side by side")] = True,
) -> None:
    """Run models under the protocol; every (model, seed) lands in MLflow. Reruns skip finished runs."""
    try:
        _run(models, dataset, seeds, jobs, firms, event_rate, data_seed, profile, protocol, params, storage,
             executor, scheduler, max_attempts, tracking_uri, command_line(ctx), compare)
    except _user_errors() as exc:
        _fail(str(exc))


def _run(models: str, dataset: str, seeds: str, jobs: int | None, firms: int | None, event_rate: float | None,
         data_seed: int | None, profile: str, protocol: str, params: str, storage: str | None, executor: str,
         scheduler: str | None, max_attempts: int | None, tracking_uri: str | None, command: str,
         compare: bool = True) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench import registry
    from bench.adapter import task_threads as pool_threads
    from bench.runner import LocalExecutor, compare_with_defaults, run_benchmark

    if profile not in ("paper", "quick"):
        raise UserError(f"--profile {profile!r}: expected 'paper' or 'quick'")
    from bench.data import check_dataset_name
    from bench.protocol import load_protocol

    if executor not in ("local", "dask"):
        raise UserError(f"--executor {executor!r}: expected 'local' or 'dask'")
    if scheduler and executor != "dask":
        raise UserError("--scheduler needs --executor dask")
    seed_spec = parse_seeds(seeds)
    jobs = jobs or default_jobs()
    cap = max_attempts or load_protocol(protocol).max_attempts
    if isinstance(seed_spec, int) and seed_spec > cap:
        raise UserError(f"--seeds {seeds}: {seed_spec} valid runs cannot fit in {cap} attempts per model; "
                        f"for the single seed {seed_spec} write --seeds {seed_spec}, (trailing comma)")
    keys = [e.key for e in registry.resolve(models)]  # unknown names fail before any work
    load_protocol(protocol)
    check_dataset_name(dataset)
    data = cli_tune.data_spec(dataset, firms, event_rate, data_seed, protocol)
    source = cli_tune.load_param_source(params, keys, data=data, profile=profile, storage=storage)
    for key in source.params:
        registry.get(key)
    if executor == "dask":
        from bench.executors import DaskExecutor

        pool = DaskExecutor(scheduler, n_workers=jobs)
    else:
        pool = LocalExecutor(jobs)
    tracker = _tracker(tracking_uri)
    console = Console(stderr=True)
    console.print(f"[bold]{data.experiment}[/] -> {tracker.uri}  (models: {models}, seeds: {seeds}, "
                  f"profile: {profile}, jobs: {jobs} x {pool_threads()} thread(s))")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("valid runs", total=None)

        def progress(msg: str, done: int, total: int) -> None:
            bar.console.print(f"  {msg}")
            bar.update(task, completed=done, total=total)

        summary = run_benchmark(data, models, tracker, seeds=seed_spec, profile=profile, params=source.params,
                                executor=pool, max_attempts=max_attempts, command=command, progress=progress,
                                model_tags={k: source.tags(k) for k in keys})
        side = []
        if compare and source.kind != "paper":
            bar.console.print(f"  default parameters on the same seeds, for comparison with --params {params}")
            side = compare_with_defaults(data, summary, tracker, source.kind, profile=profile, executor=pool,
                                         command=command, progress=progress)
    from tabulate import tabulate

    typer.echo(tabulate(summary.rows, headers="keys", tablefmt="simple"))
    typer.echo(f"{summary.executed} run(s) executed, {summary.skipped} already finished and skipped, "
               f"{summary.wall_seconds:.1f}s. See `bench leaderboard` and `mlflow ui`.")
    if side:
        typer.echo(f"\nTest composite, default vs --params {params} (mean over valid runs; paired diff over "
                   "the seeds valid for both):")
        typer.echo(tabulate(side, headers="keys", tablefmt="simple", floatfmt=".4f"))


@app.command()
def leaderboard(
    dataset: Annotated[str | None, typer.Option(help="only this dataset label (e.g. simbond)")] = None,
    protocol: Annotated[str | None, typer.Option(help="only this protocol")] = None,
    out: Annotated[Path, typer.Option(help="folder for <dataset>.md/.csv/.json")] = Path("leaderboards"),
    write: Annotated[bool, typer.Option(help="write the files (else only print)")] = True,
    note: Annotated[list[str] | None, typer.Option(help="extra line(s) for the header")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow URI")] = None,
) -> None:
    """Ranked tables (paper Tables 6, 7, 8) rendered from MLflow runs only."""
    try:
        _leaderboard(dataset, protocol, out, write, note or [], tracking_uri)
    except _user_errors() as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write leaderboard to {out}: {exc}")


def _leaderboard(dataset: str | None, protocol: str | None, out: Path, write: bool, notes: list[str],
                 tracking_uri: str | None) -> None:
    from bench import leaderboard as lbmod

    tracker = _tracker(tracking_uri)
    exps = tracker.experiments()
    shown = 0
    for exp_id, name in exps:
        label, _, proto = name.rpartition("/")
        if (dataset and label != dataset) or (protocol and proto != protocol):
            continue
        df = tracker.results_table(exp_id, bootstrap=True)
        if df.empty:
            continue
        exp = tracker.client.get_experiment(exp_id)
        commands = sorted({c for c in df["command"] if c})
        header = {
            "dataset": label, "protocol": proto, "synthetic": bool(df["synthetic"].any()),
            "command": " ; ".join(commands), "version": ", ".join(sorted(set(df["version"]))),
            "profile": ", ".join(sorted(set(df["profile"]))),
            "wall_seconds": exp.tags.get("bench.last_wall_seconds", ""),
            "git_commit": ", ".join(sorted({c[:10] for c in df["git_commit"] if c})),
            "data_fingerprint": ", ".join(sorted(set(df["data_fingerprint"]))),
            "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "notes": notes,
        }
        lb = lbmod.build(df, header)
        typer.echo(lbmod.render_markdown(lb))
        if write:
            stem = label if proto == "paper-v1" else f"{label}-{proto}"
            paths = lbmod.write(lb, out, stem)
            typer.echo("wrote " + ", ".join(str(p) for p in paths))
        shown += 1
    if not shown:
        raise UserError(f"no finished runs in {tracker.uri}"
                        + (f" for dataset '{dataset}'" if dataset else "") + "; run `bench run` first")


@app.command()
def audit(
    models: Annotated[str, typer.Option(help="models to audit besides the calendar probes")] = "lr,lightgbm",
    dataset: Annotated[str, typer.Option(help="'simbond' or 'panel:DIR'")] = "simbond",
    seeds: Annotated[str, typer.Option(help="valid runs wanted per setting, or a seed list")] = "3",
    jobs: Annotated[int | None, typer.Option(min=1, help="parallel (model, seed) tasks (default: one per core)",
                                             show_default=False)] = None,
    firms: Annotated[int | None, typer.Option(help="simbond: number of firms")] = None,
    data_seed: Annotated[int | None, typer.Option(help="simbond: generator seed")] = None,
    profile: Annotated[str, typer.Option(help="'paper' or 'quick'")] = "paper",
    protocol: Annotated[str, typer.Option(help="base protocol")] = "paper-v1",
    out: Annotated[Path, typer.Option(help="folder for <dataset>-audit.{md,csv}")] = Path("leaderboards"),
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow URI")] = None,
) -> None:
    """Leakage audit: paper vs matched alignment vs out-of-time split, with calendar-only probes."""
    try:
        _audit(models, dataset, seeds, jobs, firms, data_seed, profile, protocol, out, tracking_uri)
    except _user_errors() as exc:
        _fail(str(exc))


def _audit(models: str, dataset: str, seeds: str, jobs: int | None, firms: int | None, data_seed: int | None,
           profile: str, protocol: str, out: Path, tracking_uri: str | None) -> None:
    from tabulate import tabulate

    from bench.audit import run_audit, side_by_side
    from bench.data import check_dataset_name
    from bench.protocol import load_protocol
    from bench.registry import resolve
    from bench.runner import DataSpec, LocalExecutor, _context

    resolve(models)
    load_protocol(protocol)
    check_dataset_name(dataset)
    options = tuple((k, v) for k, v in (("firms", firms), ("data_seed", data_seed)) if v is not None)
    data = DataSpec(dataset=dataset, options=options, protocol=protocol)
    tracker = _tracker(tracking_uri)
    results = run_audit(data, models, tracker, seeds=parse_seeds(seeds), profile=profile,
                        executor_factory=lambda: LocalExecutor(jobs or default_jobs()),
                        progress=lambda msg, done, total: typer.echo(f"  {msg}", err=True))
    n_classes = len(_context(data)[1].class_names)
    errors = results.dropna(subset=["error"]) if "error" in results.columns else results.iloc[:0]
    for _, row in errors.iterrows():
        typer.echo(f"setting '{row['setting']}' skipped: {row['error']}", err=True)
    table = side_by_side(results, n_classes)
    text = tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".4f")
    note = (f"Chance macro recall = {1 / n_classes:.3f}. 'paper' = the paper's end alignment; 'matched' = "
            "performing firms cut at dates matched to the event firms'; 'temporal' = matched + out-of-time "
            "split. The probes see only the macro values at the last observation and the history length: "
            "a probe well above chance means the alignment reveals the label.")
    typer.echo(text + "\n\n" + note)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{data.label}-audit.md").write_text(f"# Leakage audit: {data.label}\n\n{text}\n\n{note}\n")
    results.to_csv(out / f"{data.label}-audit.csv", index=False)


@app.command()
def explain(
    model: Annotated[str | None, typer.Option(help="model with attention (default: emdlot, or the run's)")] = None,
    run: Annotated[str | None, typer.Option(help="MLflow seed run to retrain and explain (takes its data, "
                                                 "seed and params)")] = None,
    dataset: Annotated[str | None, typer.Option(help="'simbond' (default) or 'panel:DIR'")] = None,
    firms: Annotated[int | None, typer.Option(help="simbond: number of firms")] = None,
    data_seed: Annotated[int | None, typer.Option(help="simbond: generator seed")] = None,
    seed: Annotated[int | None, typer.Option(help="split and model seed (default 86)")] = None,
    profile: Annotated[str | None, typer.Option(help="'paper' (default) or 'quick'")] = None,
    out: Annotated[Path | None, typer.Option(help="folder for figures and tables "
                                                  "(default explain/<model>-seed<seed>)")] = None,
    fidelity: Annotated[bool, typer.Option(help="score the attention against simbond's planted drivers")] = False,
    top_k: Annotated[int, typer.Option(help="k of precision@k for --fidelity")] = 10,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow URI (for --run)")] = None,
) -> None:
    """Figures 7–9 and Table D.1 from a retrained model's attention; --fidelity checks it against the truth."""
    from bench.explain import ExplainError

    try:
        _explain(model, run, dataset, firms, data_seed, seed, profile, out, fidelity, top_k, tracking_uri)
    except (*_user_errors(), ExplainError) as exc:
        _fail(str(exc))


def _explain(model: str | None, run_id: str | None, dataset: str | None, firms: int | None, data_seed: int | None,
             seed: int | None, profile: str | None, out: Path | None, fidelity: bool, top_k: int,
             tracking_uri: str | None) -> None:
    from bench import explain as ex
    from bench.data import check_dataset_name

    if profile not in (None, "paper", "quick"):
        raise UserError(f"--profile {profile!r}: expected 'paper' or 'quick'")
    if run_id:
        given = [flag for flag, v in (("--dataset", dataset), ("--firms", firms), ("--data-seed", data_seed),
                                      ("--seed", seed), ("--profile", profile)) if v is not None]
        if given:
            raise UserError(f"--run takes the data, seed and params from the run; drop {', '.join(given)}")
        tracker = _tracker(tracking_uri)
        source = ex.source_from_run(tracker, run_id)
        if model and model != source.model:
            raise UserError(f"--model {model}: run '{run_id}' is a run of '{source.model}'")
    else:
        check_dataset_name(dataset or "simbond")
        source = ex.source_from_options(cli_tune.data_spec(dataset or "simbond", firms, None, data_seed),
                                        model or "emdlot", 86 if seed is None else seed, profile or "paper")
    out = out or Path("explain") / f"{source.model}-seed{source.seed}"
    typer.echo(f"retraining {source.model} (seed {source.seed}) on {source.data.experiment} ...", err=True)
    report = ex.run_explain(source, out, with_fidelity=fidelity, top_k=top_k)
    typer.echo(ex.summary(report.explanation))
    if report.fidelity is not None:
        typer.echo("\nFidelity against the planted drivers\n" + report.fidelity.text)
    if run_id:
        tracker.client.log_artifacts(run_id, str(out), "explain")
    typer.echo(f"\nwrote {', '.join(p.name for p in report.files)} to {out}"
               + (f" and logged them to run {run_id} under explain/" if run_id else ""))


@app.command("list")
def list_() -> None:
    """Registered models (with availability) and dataset sources."""
    from tabulate import tabulate

    from bench import registry
    from bench.data import sources

    rows = [{"model": e.key, "name": e.display_name, "view": e.view, "groups": ",".join(e.groups),
             "status": e.unavailable_reason() and f"unavailable: {e.unavailable_reason()}" or "ok"}
            for e in registry.entries()]
    rows += [{"model": k, "name": "", "view": "", "groups": "", "status": f"unavailable: {why}"}
             for k, why in registry.failed_modules().items()]
    typer.echo(tabulate(rows, headers="keys", tablefmt="simple"))
    typer.echo("")
    typer.echo(tabulate([{"dataset": s.name, "synthetic": s.synthetic, "description": s.description}
                         for s in sources()], headers="keys", tablefmt="simple"))


app.add_typer(cli_data.app, name="data", help="Validate, describe and export panels.")
app.command("tune")(cli_tune.tune)


def main() -> None:
    app()
