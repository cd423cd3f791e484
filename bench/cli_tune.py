"""``bench tune``, and where ``bench run --params paper|tuned|FILE.toml`` takes parameters from.

Heavy modules (optuna, the runner) are imported inside the functions, so ``bench --help``
stays instant.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from bench.runner import DataSpec

app = typer.Typer(add_completion=False)


def data_spec(dataset: str = "simbond", firms: int | None = None, event_rate: float | None = None,
              data_seed: int | None = None, protocol: str = "paper-v1") -> DataSpec:
    """The DataSpec of the CLI options. ``bench run`` and ``bench tune`` must build it alike:
    its label names the default study that ``--params tuned`` looks up."""
    from bench.runner import DataSpec

    options = tuple((k, v) for k, v in (("firms", firms), ("event_rate", event_rate), ("data_seed", data_seed))
                    if v is not None)
    return DataSpec(dataset=dataset, options=options, protocol=protocol)


@dataclass(frozen=True)
class ParamSource:
    """Parameter overrides per model (``run_benchmark(params=...)``) and where they came from."""

    kind: str  # "paper", "tuned" or "file:<path>"
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    studies: dict[str, str] = field(default_factory=dict)  # model -> study, for kind "tuned"

    def tags(self, model: str) -> dict[str, str]:
        """Tags for the model's runs, without the ``bench.`` prefix (``tags_for`` adds it)."""
        out = {"params_source": self.kind}
        if model in self.studies:
            out["study"] = self.studies[model]
        return out


def load_param_source(spec: str, models: list[str], *, data: DataSpec, profile: str = "paper",
                      storage: str | None = None) -> ParamSource:
    """``paper``: the adapters' defaults (paper Table 5); ``tuned``: each model's best trial of its
    default study in ``storage``; a ``.toml`` path: its ``[model]`` tables."""
    if spec == "paper":
        return ParamSource("paper")
    if spec == "tuned":
        from bench.tune import DEFAULT_STORAGE, TuneError, default_study_name, load_best_params

        studies = {m: default_study_name(m, data, profile) for m in models}
        params, missing = {}, []
        for m, name in studies.items():
            try:
                params[m] = load_best_params(storage or DEFAULT_STORAGE, name)
            except TuneError as exc:
                missing.append(str(exc))
        if missing:
            raise TuneError("--params tuned: " + "; ".join(missing))
        return ParamSource("tuned", params, studies)
    from bench.cli import UserError

    if not spec.endswith(".toml"):
        raise UserError(f"--params {spec!r}: expected 'paper', 'tuned' or a .toml file")
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"--params {path}: file not found")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"--params {path}: not valid TOML: {exc}") from None
    bad = [k for k, v in data.items() if not isinstance(v, dict)]
    if bad:
        raise UserError(f"--params {path}: expected one [model] table per model, got a plain key '{bad[0]}'")
    return ParamSource(f"file:{spec}", data)


def tune(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="one registered model, e.g. lightgbm")],
    trials: Annotated[int, typer.Option(min=1, help="finished trials the study should hold; "
                                                    "a rerun runs only the missing ones")],
    timeout: Annotated[float | None, typer.Option(min=1, help="start no trial after this many seconds")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna RDB URL (default sqlite:///optuna.db; "
                                                     "postgresql://... to share a study across hosts)")] = None,
    study: Annotated[str | None, typer.Option(help="study name (default <model>-<dataset>-<protocol>-<profile>, "
                                                   "what `bench run --params tuned` reads)")] = None,
    n_jobs: Annotated[int, typer.Option(min=1, help="trials in parallel in this process")] = 1,
    dataset: Annotated[str, typer.Option(help="'simbond' or 'panel:DIR'")] = "simbond",
    firms: Annotated[int | None, typer.Option(help="simbond: number of firms")] = None,
    event_rate: Annotated[float | None, typer.Option(help="simbond: share of firms with an event")] = None,
    data_seed: Annotated[int | None, typer.Option(help="simbond: generator seed")] = None,
    protocol: Annotated[str, typer.Option(help="protocol name or .toml file")] = "paper-v1",
    profile: Annotated[str, typer.Option(help="'paper' or 'quick': the defaults the search starts from")] = "paper",
    seeds: Annotated[str, typer.Option(help="split seeds whose validation slices a trial's objective averages: "
                                            "a count K (the protocol's first K) or a list 86,127")] = "3",
    sampler_seed: Annotated[int | None, typer.Option(help="TPE seed (default: the first seed); give each "
                                                          "worker sharing a study its own")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow URI (default: $MLFLOW_TRACKING_URI "
                                                          "or sqlite:///mlflow.db)")] = None,
) -> None:
    """Tune one model with Optuna on the validation slice (paper appendix C objective); resumable."""
    from bench.cli import UserError, _fail, _user_errors, command_line, parse_seeds
    from bench.tune import DEFAULT_STORAGE, TuneError
    from bench.tune import tune as run_tune

    try:
        if profile not in ("paper", "quick"):
            raise UserError(f"--profile {profile!r}: expected 'paper' or 'quick'")
        from bench.tracking import Tracker, resolve_tracking_uri

        res = run_tune(data_spec(dataset, firms, event_rate, data_seed, protocol), model, trials,
                       Tracker(resolve_tracking_uri(tracking_uri)), storage=storage or DEFAULT_STORAGE,
                       study=study, timeout=timeout, n_jobs=n_jobs, profile=profile, seeds=parse_seeds(seeds),
                       sampler_seed=sampler_seed, command=command_line(ctx))
    except (*_user_errors(), TuneError) as exc:
        _fail(str(exc))
    typer.echo(f"study {res.study}: {res.finished} finished trial(s), {res.ran} run now")
    verdict = "better than" if res.best_value > res.default_value else "NOT better than"
    typer.echo(f"validation slices of seeds {', '.join(map(str, res.seeds))} (objective = their mean)")
    typer.echo(f"best validation objective {res.best_value:.4f}, {verdict} the default parameters' "
               f"{res.default_value:.4f}, with")
    for k, v in sorted(res.best_params.items()):
        typer.echo(f"  {k} = {v!r}")
    typer.echo("`bench run --params tuned` with the same dataset, protocol and profile options uses them.")


app.command("tune")(tune)
