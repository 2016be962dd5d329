"""``seqclf tune``: search the spec grammar and training options with KerasTuner, then refit the best as a run.

Every trial is an ordinary fit (:meth:`~seqclf.estimators.SequenceClassifier.fit_examples`) on the
training and validation split that ``seqclf fit`` makes of the same data; the test split is only
read by the final refit. KerasTuner's oracles choose the trials (Hyperband by default, Bayesian
optimisation, random search) and keep the search's state in a folder beside the run, so a
killed tune started again with the same command goes on from its last finished trial (the state is
bundled into one file replaced atomically after each trial, since a kill can tear the file KerasTuner
is writing); with KerasTuner's
``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` set, a chief
serves the oracle and workers run the trials (its distributed tuning). The best trial's settings
are then fitted once more with the full budget and written as a run directory
(:func:`~seqclf.runs.fit_run`), with ``trials.csv`` (every trial's settings, score, epochs and
time) and ``tuning.png`` (score by trial) beside the usual files.

The search space (:data:`SPACE`, narrowed or widened by a JSON file) names our own settings:
``cell``, ``bidirectional``, ``layers``, ``units``, ``convolution`` (sensor series: ``none``, ``fcn``,
``rocket`` or ``fcn+rocket``), ``pooling``, ``dropout``, ``learning_rate``, ``batch_size`` and ``embedding_dim``
(text and tokens). A list is a choice, ``{"min": .., "max": ..}`` a range (with ``"step"``, or
``"sampling": "log"``), a single value fixes the setting.
"""

import contextlib
import copy
import dataclasses
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import tasks
from .errors import ConfigError

log = logging.getLogger(__name__)

TUNERS = ("hyperband", "bayesian", "random")
OBJECTIVES = {"val_loss": "min", "val_accuracy": "max", "val_macro_f1": "max"}
SPACE = {
    "cell": ["gru", "lstm"],
    "bidirectional": [True, False],
    "layers": [1, 2],
    "units": [32, 64, 128],
    "convolution": ["none", "fcn", "rocket", "fcn+rocket"],  # sensor series with one label each only
    "pooling": ["last", "mean", "max", "attention"],
    "dropout": {"min": 0.0, "max": 0.5, "step": 0.1},
    "learning_rate": {"min": 3e-4, "max": 3e-3, "sampling": "log"},
    "batch_size": [16, 32, 64],
    "embedding_dim": [32, 64, 128],  # text and tokens only
}


def parse_budget(text):
    """``"20m"``, ``"90s"``, ``"1.5h"`` or a number of minutes, in seconds.

    Examples
    --------
    >>> parse_budget("20m"), parse_budget("90s"), parse_budget("1.5h"), parse_budget("2")
    (1200.0, 90.0, 5400.0, 120.0)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"--time-budget must be a positive duration like 20m, 90s or 1.5h. Got {text!r} instead.")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "": 60}[match.group(2)]


def read_space(path, kind, per_step):
    """The search space for ``kind`` data: :data:`SPACE`, updated from the JSON file ``path``, without the settings
    that do not apply (``embedding_dim`` beyond text and tokens, ``convolution`` beyond sensor series with one label
    each, ``pooling`` per step)."""
    space = dict(SPACE)
    if path:
        try:
            given = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(f"--space {path}: cannot read it as JSON ({error})") from None
        unknown = sorted(set(given) - set(SPACE)) if isinstance(given, dict) else ["(not an object)"]
        if unknown:
            raise ConfigError(f"--space {path}: unknown setting(s) {', '.join(unknown)}; the space names "
                              f"{', '.join(SPACE)}")
        space.update(given)
    if kind not in ("text", "tokens"):
        space.pop("embedding_dim")
    if kind != "sensor" or per_step:
        space.pop("convolution")
    if per_step:
        space.pop("pooling")
    return space


def declare(space):
    """KerasTuner's ``HyperParameters`` of ``space``."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, values in space.items():
        if isinstance(values, list):
            if not values:
                raise ConfigError(f"--space: {name!r} has no values to choose from")
            hp.Choice(name, values) if len(values) > 1 else hp.Fixed(name, values[0])
        elif isinstance(values, dict):
            kind = hp.Int if all(isinstance(values.get(k, 1), int) for k in ("min", "max", "step")) else hp.Float
            try:
                kind(name, values["min"], values["max"], step=values.get("step"),
                     sampling=values.get("sampling", "linear"))
            except (KeyError, ValueError, TypeError) as error:
                raise ConfigError(f"--space: {name!r} needs min and max (and optionally step or sampling "
                                  f"'log'): {error}") from None
        else:
            hp.Fixed(name, values)
    return hp


def settings_of(values):
    """The estimator parameters a trial's values stand for: the ``arch`` spec from cell, direction, layers, units and
    convolution (the branches after ``+``), and the rest as they are.

    Examples
    --------
    >>> settings_of({"cell": "lstm", "bidirectional": True, "layers": 2, "units": 32, "dropout": 0.2})
    {'arch': 'bi-lstm:32,32', 'dropout': 0.2}
    """
    from .models.archs import get_architecture

    values = {k: v for k, v in values.items() if not k.startswith("tuner/")}
    units = ",".join([str(values.pop("units", 64))] * int(values.pop("layers", 1)))
    arch = f"{'bi-' if values.pop('bidirectional', False) else ''}{values.pop('cell', 'gru')}:{units}"
    convolution = values.pop("convolution", "none")
    arch += "" if convolution == "none" else f"+{convolution}"
    get_architecture(arch)  # an unknown cell is one line naming the known ones
    return {"arch": arch, **values}


def tune(data, out=None, *, tuner="hyperband", max_trials=20, time_budget=None, objective="val_loss", space=None,
         **params):
    """:func:`tune_run` from Python: ``data`` a file, ``params`` any ``seqclf fit`` parameter in snake_case; return
    the refitted estimator (:func:`seqclf.load` of the run) and the trials table.

    Examples
    --------
    >>> clf, trials = seqclf.tune("datasets/movie_reviews_sample.csv", "runs/tuned", max_trials=10)  # doctest: +SKIP
    >>> trials.sort_values("val_loss").head(3)  # doctest: +SKIP
    """
    from .estimators import load
    from .params import PARAMS
    from .rundir import default_run_dir
    from .runs import settings_from

    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise ConfigError(f"seqclf.tune got unknown parameter(s) {', '.join(unknown)}; it takes seqclf fit's")
    data, settings = settings_from(data, params)
    run, trials = tune_run(data, settings, out or default_run_dir("tuned"), tuner=tuner, max_trials=max_trials,
                           time_budget=time_budget, objective=objective, space=space)
    return (None, None) if run is None else (load(run), trials)


def tune_run(data, settings, out, tuner="hyperband", max_trials=20, time_budget=None, objective="val_loss", space=None,
             name=None, verbose=0):
    """Search, refit the best trial and write it as a run directory; return ``(run directory, trials table)``, or
    ``(None, None)`` in a worker of a distributed search (its chief writes the run).

    ``data``, ``settings``: as :func:`~seqclf.runs.fit_run` takes them (the settings the space does not name stay as
    given). ``max_trials`` and ``time_budget`` (seconds, or ``"20m"``) end the search, whichever comes first.

    Examples
    --------
    >>> run, trials = tune_run(DataSettings("datasets/movie_reviews_sample.csv"), FitSettings(), "runs/tuned",
    ...                        max_trials=10, time_budget="10m")  # doctest: +SKIP
    """
    import keras_tuner

    from .report import write_report
    from .training.loop import MIN_VALIDATION
    from .runs import _prepared, _split, fit_run

    if tuner not in TUNERS:
        raise ConfigError(f"--tuner must be one of {', '.join(TUNERS)}. Got {tuner!r} instead.")
    if objective not in OBJECTIVES:
        raise ConfigError(f"--objective must be one of {', '.join(OBJECTIVES)}. Got {objective!r} instead.")
    if max_trials is not None and max_trials < 1:
        raise ConfigError(f"--max-trials must be >= 1. Got {max_trials!r} instead.")
    seconds = parse_budget(time_budget) if isinstance(time_budget, str) else time_budget
    out = Path(out)
    if out.exists() and not _worker():
        raise ConfigError(f"{out} exists already; pass another --out or remove it")
    task = tasks.get_task(settings.task)
    if not task.searchable:
        raise ConfigError(f"seqclf tune searches classifiers and taggers; --task {task.name} is not searched yet")
    estimator, adapter, frame = _prepared(data, settings, verbose=0)
    train_frame, val_frame, _ = _split(adapter, frame, data, settings)
    if not adapter.task.per_step and len(val_frame) < MIN_VALIDATION:
        log.warning("the validation split holds %d examples: too few to tell trials apart (on ArrowHead's 4 the "
                    "tuned model scored below the defaults); give a larger --val-size or a --val file",
                    len(val_frame))
    space = read_space(space, adapter.kind, adapter.task.per_step)
    budget = _max_epochs(settings, len(train_frame))
    project = out.parent / f".{out.name}.tuning"
    if not _distributed():
        _restore(project)
    search = _search_class()(
        estimator, adapter, train_frame, val_frame, data.data, objective, seconds, max_trials,
        oracle=_oracle(keras_tuner, tuner, objective, declare(space), max_trials, budget, settings.seed),
        directory=str(out.parent), project_name=project.name, overwrite=False)
    search.search(verbose=0)
    if _worker():
        log.info("this worker's trials are done; the chief refits the best and writes %s", out)
        return None, None
    finished = search.oracle.get_best_trials(1)
    if not finished:
        raise ConfigError("no trial finished; nothing to refit (see the log for why each failed)")
    best = finished[0]
    chosen = settings_of(best.hyperparameters.values)
    log.info("best trial %s (%s %.4f): %s; refitting it with the full budget", best.trial_id, objective, best.score,
             json.dumps(chosen))
    kind_options = {k: chosen.pop(k) for k in list(chosen) if k == "embedding_dim"}
    run = fit_run(_with_options(data, kind_options), dataclasses.replace(settings, **chosen), out=out, name=name,
                  verbose=verbose)
    trials = trials_table(search.oracle, objective)
    trials.to_csv(run / "trials.csv", index=False)
    plot_trials(trials, objective, run / "tuning.png")
    write_report(run)  # again, with tuning.png
    shutil.rmtree(project, ignore_errors=True)
    return run, trials


def _search_class():
    import keras_tuner

    class Search(keras_tuner.Tuner):
        """KerasTuner's tuner whose trials are ``seqclf`` fits (``run_trial``), reporting one line per trial."""

        def __init__(self, estimator, adapter, train_frame, val_frame, source, objective, seconds, max_trials,
                     **kwargs):
            super().__init__(**kwargs)
            self.base, self.adapter, self.source = estimator, adapter, source
            self.train_frame, self.val_frame = train_frame, val_frame
            self.objective_name, self.seconds, self.max_trials = objective, seconds, max_trials
            self.started = time.perf_counter()

        def run_trial(self, trial, *args, **kwargs):
            from sklearn.base import clone

            values = dict(trial.hyperparameters.values)
            chosen = settings_of(values)
            adapter = copy.deepcopy(self.adapter)  # prepared (columns found), not fitted
            if "embedding_dim" in chosen:
                adapter.embedding_dim = chosen.pop("embedding_dim")
            if "tuner/epochs" in values:  # Hyperband's budget for this round (each round trains afresh)
                chosen["epochs"] = int(values["tuner/epochs"])
            estimator = clone(self.base).set_params(**chosen, verbose=0)
            started = time.perf_counter()
            with _quiet():  # one line per trial, not every fit's notes
                estimator.fit_examples(adapter, self.train_frame, self.val_frame, source=self.source)
            result = estimator.training_
            kept = result.best_epoch - 1
            task, fitted = estimator.adapter_.task, estimator.adapter_
            scores = task.evaluate(fitted, self.val_frame, task.predictions(estimator.model_, fitted, self.val_frame),
                                   "validation")
            return {"val_loss": float(result.history["val_loss"][kept]),
                    "val_accuracy": float(scores["accuracy"]), "val_macro_f1": float(scores["macro_f1"]),
                    "epochs": result.epochs_run, "seconds": round(time.perf_counter() - started, 1)}

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            if not _distributed():
                _checkpoint(Path(self.project_dir))
            best = self.oracle.get_best_trials(1)
            finished = self.oracle.get_trial(trial.trial_id)
            score = finished.score
            epochs = finished.hyperparameters.values.get("tuner/epochs")
            log.info("trial %s%s: %s %s%s; best so far %s (trial %s)  [%s]", trial.trial_id,
                     f" of at most {self.max_trials}" if self.max_trials else "", self.objective_name,
                     "failed" if score is None else f"{score:.4f}", f" after {epochs} epochs" if epochs else "",
                     f"{best[0].score:.4f}" if best else "-", best[0].trial_id if best else "-",
                     _short(settings_of(finished.hyperparameters.values)))
            if self.seconds and time.perf_counter() - self.started > self.seconds:
                log.info("the time budget is spent: no new trial starts")
                self.oracle.max_trials = len(self.oracle.trials)

    return Search


CHECKPOINT = "after_last_trial.state"


def _checkpoint(project):
    """Bundle the search's state files, consistent once a trial has ended, into one file replaced atomically."""
    files = {str(path.relative_to(project)): path.read_text() for path in sorted(project.rglob("*.json"))}
    partial = project / f"{CHECKPOINT}.partial"
    partial.write_text(json.dumps(files))
    os.replace(partial, project / CHECKPOINT)


def _restore(project):
    """Put back the state of the last finished trial, so a kill mid-write (a torn JSON file) cannot stop a resume;
    a search killed before any trial finished starts afresh."""
    if not project.exists():
        return
    saved = project / CHECKPOINT
    if not saved.exists():
        log.warning("%s holds no finished trial; the search starts afresh", project)
        shutil.rmtree(project)
        return
    files = json.loads(saved.read_text())
    for path in project.rglob("*.json"):
        if str(path.relative_to(project)) not in files:
            path.unlink()
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    log.info("resuming the search after its %d finished trials",
             sum(Path(name).name == "trial.json" for name in files))


@contextlib.contextmanager
def _quiet(names=("seqclf.training", "seqclf.estimators", "seqclf.data")):
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _distributed():
    """Whether KerasTuner's distributed tuning is on (a chief serves the oracle and keeps its state)."""
    return bool(os.environ.get("KERASTUNER_ORACLE_IP"))


def _worker():
    """Whether this process is a worker of KerasTuner's distributed tuning (its chief serves the oracle)."""
    return _distributed() and os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief"


def _oracle(keras_tuner, tuner, objective, hp, max_trials, max_epochs, seed):
    goal = keras_tuner.Objective(objective, direction=OBJECTIVES[objective])
    common = {"objective": goal, "hyperparameters": hp, "seed": seed, "max_consecutive_failed_trials": 3}
    if tuner == "hyperband":
        oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=max_epochs, factor=3, **common)
        oracle.max_trials = max_trials  # Hyperband sizes its brackets by epochs; this caps the trials too
        return oracle
    if tuner == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=max_trials, **common)
    return keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, **common)


def _max_epochs(settings, n_train):
    from .training import training_budget

    return max(2, training_budget(n_train, settings.epochs, settings.batch_size, settings.patience)["epochs"])


def _with_options(data, options):
    data = copy.copy(data)
    data.options = {**data.options, **options}
    return data


def _short(values):
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def trials_table(oracle, objective):
    """Every trial of ``oracle``: id, status, the objective's value, epochs, seconds, and its settings."""
    rows = []
    for trial_id in oracle.start_order if hasattr(oracle, "start_order") else sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        metrics = {name: trial.metrics.get_last_value(name) for name in ("epochs", "seconds")
                   if trial.metrics.exists(name)}
        rows.append({"trial": trial_id, "status": trial.status, objective: trial.score, **metrics,
                     **settings_of(trial.hyperparameters.values)})
    return pd.DataFrame(rows)


def plot_trials(trials, objective, path):
    """``tuning.png``: the objective of each trial in order, and the best so far."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 4), layout="constrained")
    axes = figure.subplots()
    scores = pd.to_numeric(trials[objective], errors="coerce").to_numpy()
    order = pd.to_numeric(trials["trial"]).to_numpy()  # numbered as in trials.csv and the progress lines
    axes.plot(order, scores, "o", label="trial")
    best = (np.fmin.accumulate if OBJECTIVES[objective] == "min" else np.fmax.accumulate)(scores)
    axes.step(order, best, where="post", label="best so far")
    axes.set(xlabel="trial", ylabel=objective, title=f"seqclf tune: {objective} by trial")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend()
    figure.savefig(path, dpi=100)
