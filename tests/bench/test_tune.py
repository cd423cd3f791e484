"""``bench tune`` on the tiny panel: resume to exactly N trials, MLflow layout, pruning hook,
tuned parameters reaching ``bench run``, and no access to the test part."""

from dataclasses import replace

import numpy as np
import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

from bench import runner, tune
from bench.adapter import ModelAdapter
from bench.cli_tune import load_param_source
from bench.registry import register
from bench.runner import DataSpec, run_benchmark
from bench.split import split_entities
from bench.tracking import TAG, Tracker
from tests.conftest import SPY_LOG, SpyModel

DATA = DataSpec("tiny", (("firms", 90),))


@register(groups=())
class EpochModel(ModelAdapter):
    """Reports ``quality`` for each of 6 epochs through the tuner's hook; predicts the prior."""

    name = "epochs"
    view = "tabular"
    default_params = {"quality": 0.5}
    epoch_callback = None

    @classmethod
    def search_space(cls, trial):
        return {"quality": trial.suggest_float("quality", 0.0, 1.0)}

    def _fit(self, train, valid):
        for epoch in range(6):
            self.log_history(valid_score=self.params["quality"])
            if self.epoch_callback is not None:
                self.epoch_callback(epoch, self.params["quality"])
        self.prior_ = np.bincount(train.y, minlength=self.n_classes_) / len(train)

    def _predict_proba(self, test):
        return np.tile(self.prior_, (len(test), 1))


@pytest.fixture(scope="module")
def tracker(tmp_path_factory) -> Tracker:
    """One MLflow store for the module (creating one costs seconds); tests use distinct studies."""
    return Tracker(f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}")


@pytest.fixture
def storage(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def _runs(tracker: Tracker, kind: str, study: str) -> list:
    exp_id = tracker.experiment_id("tiny-firms90/tune", create=False)
    return tracker._search(exp_id, f"tags.`{TAG}kind` = '{kind}' and tags.`{TAG}study` = '{study}'")


def test_interrupted_study_resumes_to_exactly_n_trials(tracker, storage):
    first = tune.tune(DATA, "dt", 3, tracker, storage=storage, profile="quick")
    assert (first.finished, first.ran) == (3, 3)
    second = tune.tune(DATA, "dt", 6, tracker, storage=storage, profile="quick")
    assert (second.finished, second.ran) == (6, 3)
    assert tune.tune(DATA, "dt", 6, tracker, storage=storage, profile="quick").ran == 0

    study = optuna.load_study(study_name="dt-tiny-firms90-paper-v1-quick", storage=storage)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == 6  # the resumed sampler does not replay the first proposals
    assert study.user_attrs["best_params"] == second.best_params == study.best_trial.user_attrs["params"]
    assert all(0 < t.value <= 1 for t in trials)

    exp_id = tracker.experiment_id("tiny-firms90/tune", create=False)
    assert tracker.client.get_experiment(exp_id).tags[f"{TAG}kind"] == "tune"
    (parent,) = _runs(tracker, "study", study.study_name)
    kids = _runs(tracker, "trial", study.study_name)
    assert len(kids) == 6 and {k.data.tags["mlflow.parentRunId"] for k in kids} == {parent.info.run_id}
    by_number = {int(k.data.tags[f"{TAG}trial"]): k for k in kids}
    for t in trials:
        run = by_number[t.number].data
        assert run.metrics["valid_objective"] == pytest.approx(t.value)
        if t.user_attrs.get("defaults"):  # trial 0: DT's defaults (max_depth=None is not in the space)
            assert t.number == 0 and run.params == {"min_samples_leaf": "1"}
        else:
            assert run.params["max_depth"] == str(t.params["max_depth"])
    assert parent.data.metrics["best_valid_objective"] == pytest.approx(second.best_value)
    assert first.seeds == (86, 127, 71)  # the protocol's first three seeds
    defaults = tune.validation_scores(DATA, "dt", {}, "quick", first.seeds)["objective"]
    assert first.default_value == second.default_value == parent.data.metrics["default_valid_objective"] == defaults


def test_a_trial_is_the_mean_over_the_seeds_validation_slices(tracker, storage):
    res = tune.tune(DATA, "dt", 2, tracker, storage=storage, profile="quick", seeds=[86, 71])
    assert res.seeds == (86, 71)
    study = optuna.load_study(study_name="dt-tiny-firms90-paper-v1-quick", storage=storage)
    assert study.user_attrs["seeds"] == [86, 71]
    for t in study.get_trials():
        per_seed = {s: tune.seed_scores(DATA, "dt", t.user_attrs["params"], "quick", s) for s in (86, 71)}
        assert t.user_attrs["per_seed_objective"] == {str(s): v["objective"] for s, v in per_seed.items()}
        assert t.value == pytest.approx(np.mean([v["objective"] for v in per_seed.values()]))
        assert t.user_attrs["metrics"]["recall"] == pytest.approx(np.mean([v["recall"] for v in per_seed.values()]))
    kids = _runs(tracker, "trial", study.study_name)
    assert {k.data.metrics["valid_objective_seed71"] for k in kids} == \
        {t.user_attrs["per_seed_objective"]["71"] for t in study.get_trials()}
    with pytest.raises(tune.TuneError, match="seeds .*other settings|other settings.*seeds"):
        tune.tune(DATA, "dt", 3, tracker, storage=storage, profile="quick", seeds=[86])
    with pytest.raises(tune.TuneError, match="--seeds 11: expected 1 to 10"):
        tune.tuning_seeds(DATA, 11)


def test_a_new_study_starts_from_the_defaults(tracker, storage):
    from bench import registry

    assert tune.default_trial(registry.get("lightgbm"), "quick")[0] == {
        "n_estimators": 100, "learning_rate": 0.05, "max_depth": 6, "subsample": 0.8, "colsample_bytree": 0.8,
        "num_leaves": 31}
    assert tune.default_trial(registry.get("dt"), "paper")[0] == {"min_samples_leaf": 1}  # max_depth=None: left out
    assert tune.default_trial(registry.get("emdlot"), "paper")[0]["hidden_size"] == 512  # Table 5
    assert "hidden_size" not in tune.default_trial(registry.get("emdlot"), "quick")[0]  # 32 is not a choice
    res = tune.tune(DATA, "knn", 3, tracker, storage=storage, profile="quick", seeds=[86], n_jobs=2)
    trials = optuna.load_study(study_name="knn-tiny-firms90-paper-v1-quick", storage=storage).get_trials()
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)  # n_jobs 2: no double run
    (first,) = [t for t in trials if t.user_attrs.get("defaults")]
    assert first.number == 0 and first.params == {"n_neighbors": 5, "weights": "uniform"}
    assert first.user_attrs["params"] == {}  # as the best trial, it makes `--params tuned` run the defaults
    assert first.value == res.default_value == tune.validation_scores(DATA, "knn", {}, "quick", (86,))["objective"]
    assert res.best_value >= res.default_value


def test_a_study_is_not_reused_for_other_settings(tracker, storage):
    tune.tune(DATA, "dt", 1, tracker, storage=storage, study="shared", profile="quick")
    with pytest.raises(tune.TuneError, match="model 'dt' \\(asked 'lr'\\)"):
        tune.tune(DATA, "lr", 1, tracker, storage=storage, study="shared", profile="quick")


def test_models_with_an_epoch_callback_are_pruned(tracker, storage):
    tune.tune(DATA, "epochs", 12, tracker, storage=storage, profile="quick")
    trials = optuna.load_study(study_name="epochs-tiny-firms90-paper-v1-quick", storage=storage).get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert len(trials) == 12 and pruned
    assert all(len(t.intermediate_values) >= 4 for t in pruned)  # MedianPruner warm-up: 3 epochs
    kids = _runs(tracker, "trial", "epochs-tiny-firms90-paper-v1-quick")
    statuses = {k.data.tags[f"{TAG}trial"]: k.info.status for k in kids}
    assert {statuses[str(t.number)] for t in pruned} == {"KILLED"}


def test_tuned_params_reach_bench_run(tracker, storage, tmp_path):
    best = tune.tune(DATA, "dt", 3, tracker, storage=storage, profile="quick").best_params

    src = load_param_source("tuned", ["dt"], data=DATA, profile="quick", storage=storage)
    assert src.params == {"dt": best}
    assert src.tags("dt") == {"params_source": "tuned", "study": "dt-tiny-firms90-paper-v1-quick"}
    run_benchmark(DATA, "dt", tracker, seeds=[86], profile="quick", params=src.params)
    exp_id = tracker.experiment_id(DATA.experiment, create=False)
    (parent,) = tracker._search(exp_id, f"tags.`{TAG}kind` = 'parent'")
    assert {k: parent.data.params[k] for k in best} == {k: str(v) for k, v in best.items()}

    with pytest.raises(tune.TuneError, match="no tuning study 'lr-tiny-firms90-paper-v1-quick'"):
        load_param_source("tuned", ["dt", "lr"], data=DATA, profile="quick", storage=storage)
    assert load_param_source("paper", ["dt"], data=DATA).params == {}
    toml = tmp_path / "p.toml"
    toml.write_text("[dt]\nmax_depth = 3\n")
    from_file = load_param_source(str(toml), ["dt"], data=DATA)
    assert from_file.params == {"dt": {"max_depth": 3}} and from_file.tags("dt") == {"params_source": f"file:{toml}"}


@pytest.fixture
def poisoned_test_part(monkeypatch):
    """Replace the test part's raw features with +-inf and its texts with noise, for seed 86."""
    panel, raw, protocol = runner._context(DATA)
    test = split_entities(raw.y, protocol, 86, raw.class_names).test
    X = raw.X.copy()
    X[test] = np.where(np.arange(X.shape[-1]) % 2, np.inf, -np.inf)
    texts = {s: t.copy() for s, t in raw.texts.items()}
    for t in texts.values():
        t[test] = "poison " * 50
    poisoned = replace(raw, X=X, texts=texts)
    monkeypatch.setattr(runner, "_context", lambda data: (panel, poisoned, protocol))
    monkeypatch.setattr(tune, "_context", runner._context)
    yield set(raw.entity[test])
    runner._seed_data.cache_clear()
    tune.train_valid.cache_clear()


def _objective_spy(monkeypatch) -> tuple[float, set]:
    """The tuning objective of the spy model for seed 86, and every entity the model saw."""
    seen: set = set()
    original = SpyModel._predict_proba

    def spy_predict(self, view):
        seen.update(view.entity)
        return original(self, view)

    monkeypatch.setattr(SpyModel, "_predict_proba", spy_predict)
    runner._seed_data.cache_clear()
    tune.train_valid.cache_clear()
    SPY_LOG.clear()
    value = tune.make_objective(DATA, "spy", "quick", (86,))(FixedTrial({}))
    for rec in SPY_LOG:
        seen |= rec["train"] | rec["valid"]
    return value, seen


def test_tuning_never_reads_the_test_part(monkeypatch, request):
    clean, _ = _objective_spy(monkeypatch)
    test_ids = request.getfixturevalue("poisoned_test_part")
    value, seen = _objective_spy(monkeypatch)
    assert np.isfinite(value) and value == clean
    assert seen and not seen & test_ids


def test_cli_prints_the_best_and_resumes(tracker, storage):
    from typer.testing import CliRunner

    from bench.cli_tune import app

    args = ["--model", "lr", "--trials", "2", "--dataset", "tiny", "--firms", "90", "--profile", "quick",
            "--storage", storage, "--tracking-uri", tracker.uri]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "study lr-tiny-firms90-paper-v1-quick: 2 finished trial(s), 2 run now" in first.output
    assert "best validation objective" in first.output and "default parameters'" in first.output
    assert "  C = " in first.output
    assert "0 run now" in CliRunner().invoke(app, args).output
    bad = CliRunner().invoke(app, [*args[:-4], "--storage", "nosuchdb://x", "--tracking-uri", tracker.uri])
    assert bad.exit_code == 2 and "optuna storage" in bad.output


def test_run_with_tuned_params_prints_both_test_composites(storage, tmp_path):
    from typer.testing import CliRunner

    from bench.cli import app

    # a store of its own: parameters another test ran under another source would share the config
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    tune.tune(DATA, "dt", 1, tracker, storage=storage, profile="quick")  # trial 0: the defaults
    best = {"max_depth": 3, "min_samples_leaf": 2}  # a trial that beats them, so tuned != defaults
    study = optuna.load_study(study_name="dt-tiny-firms90-paper-v1-quick", storage=storage)
    study.add_trial(optuna.trial.create_trial(
        params=best, value=2.0, user_attrs={"params": best},
        distributions={"max_depth": optuna.distributions.IntDistribution(2, 20),
                       "min_samples_leaf": optuna.distributions.IntDistribution(1, 50, log=True)}))
    args = ["run", "--models", "dt", "--params", "tuned", "--seeds", "86,127", "--dataset", "tiny", "--firms", "90",
            "--profile", "quick", "--jobs", "1", "--storage", storage, "--tracking-uri", tracker.uri]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "Test composite, default vs --params tuned" in out.output

    exp_id = tracker.experiment_id(DATA.experiment, create=False)
    df = tracker.results_table(exp_id)
    tuned, default = df[df["model"] == "dt@tuned"], df[df["model"] == "dt"]
    assert sorted(tuned["seed"]) == sorted(default["seed"]) == [86, 127]
    assert set(tuned["display_name"]) == {"Decision Tree (tuned)"} and set(default["params_source"]) == {"paper"}
    (line,) = [ln for ln in out.output.splitlines() if ln.startswith("dt ") and "86,127" in ln]
    for part in (tuned, default):
        mean = part.loc[part["valid"], "composite"].mean()
        assert f"{mean:.4f}" in line
    parents = tracker._search(exp_id, f"tags.`{TAG}kind` = 'parent' and tags.`{TAG}params_source` = 'tuned'")
    assert {k: parents[0].data.params[k] for k in best} == {k: str(v) for k, v in best.items()}

    again = CliRunner().invoke(app, args)  # everything finished: both configurations are reused
    assert again.exit_code == 0 and "0 run(s) executed" in again.output
    assert CliRunner().invoke(app, [*args, "--no-compare"]).output.count("Test composite") == 0
