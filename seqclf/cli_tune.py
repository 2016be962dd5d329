"""``seqclf tune``: the search's own options beside every option of ``seqclf fit``."""

import sys

import click

from .cli_options import data_options, param_options
from .tuning import OBJECTIVES, TUNERS


@click.command()
@click.argument("data", type=click.Path())
@click.option("--tuner", type=click.Choice(TUNERS), default="hyperband", show_default=True,
              help="KerasTuner's oracle: Hyperband (short trials first, the best trained longer), Bayesian "
                   "optimisation or random search.")
@click.option("--max-trials", type=click.IntRange(1), default=20, show_default=True, help="Most trials to run.")
@click.option("--time-budget", help="Start no trial after this long, e.g. 20m, 90s, 1.5h [default: no limit].")
@click.option("--objective", type=click.Choice(tuple(OBJECTIVES)), default="val_loss", show_default=True,
              help="What the search minimises (val_loss) or maximises, on the validation split.")
@click.option("--space", type=click.Path(dir_okay=False), help="A JSON file narrowing or widening the search space "
                                                               "(see the README) [default: seqclf.tuning.SPACE].")
@data_options
@param_options
def tune(data, tuner, max_trials, time_budget, objective, space, **values):
    """Search architectures and training settings on DATA's validation split with KerasTuner, then refit the best
    trial and write it as a run directory, with trials.csv and tuning.png beside the usual files.

    The test split is read only by the final refit. Started again with the same --out, a killed
    search goes on from KerasTuner's state (kept beside the run until it is written).

    \b
    Example:
      seqclf tune datasets/movie_reviews_sample.csv --max-trials 12 --time-budget 20m --out runs/mr-tuned
    """
    from .rundir import default_run_dir
    from .runs import settings_from
    from .tuning import tune_run

    verbose, out, name = values.pop("verbose"), values.pop("out"), values.pop("name")
    data_settings, settings = settings_from(data, values)
    run, trials = tune_run(data_settings, settings, out or default_run_dir("tuned"), tuner=tuner, max_trials=max_trials,
                           time_budget=time_budget, objective=objective, space=space, name=name,
                           verbose=(1 if sys.stdout.isatty() else 2) if verbose is None else verbose)
    if run is not None:  # None: a worker of KerasTuner's distributed tuning, whose chief writes the run
        click.echo(f"{len(trials)} trials; run directory: {run}")
