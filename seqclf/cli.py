"""The ``seqclf`` command line: fit, evaluate, predict, generate, explain, cells, info, archs, report, serve, tune."""

import logging
import sys

import click

from .errors import SeqclfError
from .quiet import import_tensorflow_quietly
from .version import __version__

log = logging.getLogger("seqclf")
import_tensorflow_quietly()  # the adapters' options below import TensorFlow


class UserError(click.ClickException):
    """A mistake in the input: one line on stderr, exit code 2."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"Error: {self.format_message()}", err=True)


class Group(click.Group):
    """Turns library errors into :class:`UserError` and Ctrl-C into exit code 130."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SeqclfError as error:
            raise UserError(str(error)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted; nothing was written.", err=True)
            sys.exit(130)


from .cli_options import column_options, data_options, param_options  # noqa: E402  (after TensorFlow's quiet import)
from .cli_report import report  # noqa: E402
from .cli_serve import serve  # noqa: E402
from .cli_tune import tune  # noqa: E402


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="seqclf")
@click.option("-q", "--quiet", is_flag=True, help="Only print warnings and errors.")
def main(quiet):
    """Turn sequences into labels with recurrent neural networks.

    \b
    Example:
      seqclf fit --arch bigru datasets/movie_reviews_sample.csv --out runs/mr
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


@main.command()
@click.argument("data", type=click.Path(), nargs=-1, required=True)
@data_options
@param_options
def fit(data, **values):
    """Train, evaluate and export a classifier from DATA (a file, or a quoted glob or folder of CSV/Parquet shards).

    Writes a run directory with the model, its SavedModel export, metrics, plots and the
    test predictions. Tasks (--task): many-to-one, one label per sequence; many-to-many, one per
    step (sensor data); tag, a tag per token (CoNLL files); next-char, a character language model;
    seq2seq, an output text per source text (an encoder-decoder with attention).

    \b
    Examples:
      seqclf fit --arch bigru datasets/movie_reviews_sample.csv --out runs/mr
      seqclf fit --arch bilstm datasets/basic_motions_TRAIN.ts --test datasets/basic_motions_TEST.ts
      seqclf fit --task many-to-many --window 100 --stride 50 datasets/basic_motions_long_TRAIN.csv
      seqclf fit --arch lstm --window 20 --horizon 1 datasets/goog_daily.csv --walk-forward 4
      seqclf fit --task tag --arch bilstm datasets/ud_english_sample.conllu
      seqclf fit --task next-char datasets/tiny_shakespeare_sample.txt
      seqclf fit --task seq2seq --target-tokens space datasets/cmudict_sample.tsv
      seqclf fit "data/part-*.parquet" --out runs/big   # shards: streamed, never all in memory
    """
    from .runs import fit_run, settings_from

    if len(data) > 1:
        raise click.UsageError(f"DATA is one file, glob or folder; got {len(data)} ({', '.join(data[:3])}"
                               f"{', ...' if len(data) > 3 else ''}): did the shell expand a glob? Quote it: "
                               f"seqclf fit \"data/part-*.parquet\"")
    verbose, out, name = values.pop("verbose"), values.pop("out"), values.pop("name")
    data_settings, settings = settings_from(data[0], values)
    run = fit_run(data_settings, settings, out=out, name=name,
                  verbose=(1 if sys.stdout.isatty() else 2) if verbose is None else verbose)
    if run is not None:  # None: a worker of a cluster, whose chief writes the run
        click.echo(f"Run directory: {run}")


def _kernels_line(kernels):
    """Which recurrent layers run on cuDNN on a GPU, and why the others do not."""
    generic = {name: why for name, why in kernels.items() if why != "cuDNN"}
    line = f"cuDNN for {len(kernels) - len(generic)} of {len(kernels)} recurrent layers"
    return line + "".join(f"; {name}: generic loop ({why})" for name, why in generic.items())


def _data_line(data):
    """Where a run's training data came from, for ``seqclf info``."""
    if "data" not in data:
        return "in memory (saved from Python)"
    source = data["data"]
    if source.get("shards"):
        return f"{source['path']} ({source['shards']} shards, {source['rows']:,} rows)"
    if source["path"] == "-":
        return "standard input"
    return f"{source['path']} (sha256 {source['sha256'][:12]})"


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("data", type=click.Path(dir_okay=False, allow_dash=True))
@column_options
@click.option("--output", type=click.Path(dir_okay=False), help="Metrics JSON [default: RUN_DIR/evaluate-<data>.json].")
@data_options
def evaluate(run_dir, data, text_col, series_col, label_col, format, encoding, output):
    """Evaluate the model of RUN_DIR on the labelled file DATA; print and write the metrics.

    \b
    Examples:
      seqclf evaluate runs/mr datasets/movie_reviews_sample.csv
      seqclf evaluate runs/bm datasets/basic_motions_TEST.ts
    """
    from .runs import evaluate_run, report_lines, run_info
    from .tasks import of_run

    columns = {"text_col": text_col, "series_col": series_col, "label_col": label_col}
    metrics, path = evaluate_run(run_dir, data, format, encoding, columns, output)
    config = run_info(run_dir)[0]
    for line in of_run(config).result_lines(metrics) + report_lines(config, metrics):
        click.echo(line)
    click.echo(f"Metrics written to {path}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("data", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--text", "texts", multiple=True, help="A text to classify (repeatable), instead of DATA.")
@column_options
@click.option("--output", type=click.Path(dir_okay=False), help="CSV file to write [default: standard output].")
@data_options
def predict(run_dir, data, texts, text_col, series_col, label_col, format, encoding, output):
    """Predict the labels of DATA (a file, or - for one text per line on stdin) with RUN_DIR.

    Prints CSV: id, predicted label, one probability column per class (seq2seq: id, source,
    output, score).

    For sensor models a row per series or window (id, start), or per step for many-to-many.

    \b
    Examples:
      seqclf predict runs/mr --text "a gripping, funny film"
      echo "dull and far too long" | seqclf predict runs/mr -
      seqclf predict runs/steps datasets/basic_motions_long_TEST.csv --output steps.csv
    """
    from .errors import ConfigError
    from .rundir import write_atomically
    from .runs import predict_run

    if bool(texts) == bool(data):
        raise ConfigError("pass either DATA (a file, or - for stdin) or --text, not both and not neither")
    columns = {"text_col": text_col, "series_col": series_col, "label_col": label_col}
    table = predict_run(run_dir, data, texts or None, format, encoding, columns)
    csv = table.to_csv(index=False)
    if output:
        write_atomically(output, csv)
    else:
        click.echo(csv, nl=False)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--prime", required=True, help="The text to continue (characters the model knows).")
@click.option("--length", type=click.IntRange(0), default=500, show_default=True, help="Characters to generate.")
@click.option("--temperature", type=float, default=1.0, show_default=True,
              help="Below 1: safer, more repetitive text; above 1: more surprising.")
@click.option("--seed", type=int, help="Random seed: the same seed gives the same text [default: a new one each time].")
def generate(run_dir, prime, length, temperature, seed):
    """Sample text from the character language model of RUN_DIR (trained with --task next-char).

    Prints the prime followed by the generated characters.

    \b
    Example:
      seqclf generate runs/shakespeare --prime "ROMEO:" --length 500 --temperature 0.8
    """
    from .estimators import load

    click.echo(prime + load(run_dir).generate(prime, length, temperature, seed))


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def info(run_dir):
    """Show what RUN_DIR holds: architecture, parameters, data and metrics.

    \b
    Example:
      seqclf info runs/mr
    """
    from .runs import report_lines, run_info
    from .tasks import of_run

    config, metrics = run_info(run_dir)
    settings, data, summary, model = config["settings"], config["data"], config["data_summary"], config["model"]
    task = of_run(config)
    rows = [
        ("run", run_dir),
        ("kind", config["kind"]),
        ("task", task.name),
        ("architecture", f"{settings['arch']} units={','.join(map(str, settings['units']))} "
                         f"pooling={'none' if task.per_step else model.get('pooling', settings['pooling'])} "
                         f"dropout={model.get('dropout', settings['dropout'])}"),
        ("parameters", f"{model['n_parameters']:,}"),
        ("data", _data_line(data)),
        ("rows", ", ".join(f"{k} {v}" for k, v in summary["rows"].items())),
        ("classes", ", ".join(f"{k} ({v})" for k, v in summary["class_counts"].items())),
    ]
    rows += [(k, v) for k, v in summary.items() if k not in ("rows", "class_counts", "task")]
    if model.get("gpu_kernels"):  # runs from before 2026-12-06 did not record them
        rows.append(("on a GPU", _kernels_line(model["gpu_kernels"])))
    if metrics:
        rows.append(("epochs", f"{metrics['epochs_run']} (best {metrics['best_epoch']}, stopped by "
                               f"{metrics['stopped_by']}), {metrics['train_seconds']:.1f} s"))
        rows += [(split, task.headline(metrics[split])) for split in ("val", "test")]
        rows += [("", line) for line in report_lines(config, {**metrics["test"], **metrics})]
    rows.append(("export", f"{run_dir}/export/{model['export_name']}/1"))
    click.echo("\n".join(f"{name:<17}{value}" for name, value in rows))


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("data", required=False, type=click.Path(dir_okay=False))
@click.option("--text", help="A text to look inside the model with (text models), instead of DATA.")
@click.option("--row", type=click.IntRange(0), default=0, show_default=True,
              help="Which sequence (or window) of DATA, counting from 0.")
@click.option("--gradients", is_flag=True,
              help="Instead: the norm of dL/dx_t at the first recurrent layer's input by distance from the output, "
                   "over DATA's first sequences (gradients.png, gradients.json).")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for explain.html and explain.png [default: RUN_DIR/explain].")
@data_options
def explain(run_dir, data, text, row, gradients, out, format, encoding, label_col):
    """Show how the model of RUN_DIR reads one input: attention and hidden units per step.

    Writes explain.html (each step shaded by its attention weight, a table of the most active
    units) and explain.png (the same as a picture); for --task seq2seq, the attention alignment
    (source symbols across, output symbols down). With --gradients, how strongly the loss at the
    output depends on each earlier step (vanishing or exploding gradients).

    \b
    Examples:
      seqclf explain runs/attn --text "a gripping, funny film"
      seqclf explain runs/bm datasets/basic_motions_TEST.ts --row 3
      seqclf explain runs/g2p --text "seqclf"
      seqclf explain runs/bm datasets/basic_motions_TEST.ts --gradients
    """
    from pathlib import Path

    from .data.readers import read_table
    from .errors import ConfigError
    from .estimators import load

    if (text is None) == (data is None):
        raise ConfigError("pass either DATA or --text, not both and not neither")
    estimator = load(run_dir)
    X = [text] if text is not None else read_table(data, estimator.task_.read_format(data, format), encoding)
    out = Path(out) if out else Path(run_dir) / "explain"
    if gradients:
        return _explain_gradients(estimator, X, out)
    view = estimator.task_.explain(estimator, X, index=0 if text is not None else row)
    _write_report(out, {"explain.html": view.to_html()}, view.figure(), "explain.png", view.lines())


def _write_report(out, pages, figure, png, lines):
    """Write ``pages`` (``{file name: text}``) and ``figure`` as ``png`` into ``out``, each atomically; print ``lines``
    and what was written."""
    from .rundir import write_atomically

    out.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        write_atomically(out / name, text)
    partial = out / f".{png}.tmp"
    figure.savefig(partial, dpi=100, format="png")
    partial.replace(out / png)
    for line in lines:
        click.echo(line)
    written = [str(out / name) for name in pages]
    click.echo(f"written {', '.join(written)} and {out / png}")


def _explain_gradients(estimator, X, out):
    """``seqclf explain --gradients``: the trained model's profile beside the same architecture's untrained one."""
    import json

    from .gradients import gradient_by_distance

    profile = gradient_by_distance(estimator, X)
    untrained = gradient_by_distance(estimator, X, untrained=True)
    shares = [f"{untrained.ratio(d):.2e} at distance {d}" for d in (1, 10, 50, 100, 200) if d < len(untrained.mean)]
    _write_report(out, {"gradients.json": json.dumps({"trained": profile.as_dict(), "untrained": untrained.as_dict()},
                                                     indent=2)},
                  profile.figure(others={untrained.layer: untrained}), "gradients.png",
                  profile.lines() + ["the same architecture untrained (freshly initialised), of its distance 0: " +
                                     ", ".join(shares)])


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--feature", "features", multiple=True, required=True,
              help="A feature to find units for (repeatable): quote, line-position, bracket-depth, indent, comment "
                   "(text), step (any kind), or a numeric column of a sensor long table.")
@click.option("--max-steps", type=click.IntRange(1), default=20000, show_default=True,
              help="Read the first sequences of DATA up to about this many steps.")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True, help="Units listed per feature.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the untrained baseline's weights and of the feature's shufflings.")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for cells.html, .png and .json [default: RUN_DIR/cells].")
@data_options
def cells(run_dir, data, features, max_steps, top, seed, out, format, encoding, label_col):
    """Find the hidden units of RUN_DIR's model that track a feature of the input, over the steps of DATA.

    Ranks every unit (hidden and, for LSTM cells, cell state, per layer and direction) by
    Spearman's rho with a numeric feature or AUROC for a boolean one, beside two null baselines
    (the same architecture untrained, the feature shuffled in blocks), ablates the top unit, and
    reports how often each gate saturates. Writes cells.html (the text shaded by the top unit),
    cells.png and cells.json.

    \b
    Examples:
      seqclf cells runs/shakespeare datasets/tiny_shakespeare_sample.txt --feature line-position --feature quote
      seqclf cells runs/steps datasets/basic_motions_long_TEST.csv --feature step
    """
    from pathlib import Path

    from .data.readers import read_table
    from .estimators import load
    from .units import find_units

    estimator = load(run_dir)
    table = read_table(data, estimator.task_.read_format(data, format), encoding)
    report = find_units(estimator, table, list(features), max_steps=max_steps, top=top, seed=seed)
    out = Path(out) if out else Path(run_dir) / "cells"
    _write_report(out, {"cells.html": report.to_html(), "cells.json": report.to_json()}, report.figure(), "cells.png",
                  report.lines())


@main.command()
def archs():
    """List the recurrent cells and the architecture specs --arch accepts.

    \b
    Example:
      seqclf archs
    """
    from .models.archs import CELLS, EXAMPLES
    from .models.cudnn import fused_kernel

    click.echo("An architecture is [bi-]CELL[:UNITS,...][+attn][+fcn|+mfcn][+rocket]: bi reads both directions, :128,64 stacks two "
               "layers (replacing --units), +attn pools with additive attention, +fcn adds LSTM-FCN's convolution branch "
               "(128/256/128 filters of widths 8/5/3) beside the recurrent layers (which then read a sensor series "
               "dimension-shuffled: each channel one step), +mfcn the same with squeeze-and-excite"
               "\n(MLSTM-FCN), +rocket adds MiniRocket's 84 fixed kernels at up to 32 dilations (about 10,000 "
               "proportions read by the output layer; one label per sensor series). Examples: " + ", ".join(EXAMPLES) + "\nOn a GPU, the cells marked [cuDNN] run on Keras' "
               "fused cuDNN kernel unless --recurrent-dropout is given; the others run Keras' generic loop.\n")
    for cell in CELLS.values():
        fused, _ = fused_kernel(cell.make(8, False, 0.0, 0.0, None))
        click.echo(f"{cell.name:<17} {cell.description}{' [cuDNN]' if fused else ''}")


for command in (report, serve, tune):
    main.add_command(command)

if __name__ == "__main__":
    main()
