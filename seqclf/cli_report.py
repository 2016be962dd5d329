"""``seqclf report``: rebuild a run directory's report page."""

import click


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def report(run_dir):
    """Write RUN_DIR/report.html again from the run's files: settings, data, metrics, plots, per-class scores and the
    test examples the model got most confidently wrong, on one page a browser opens offline.

    \b
    Example:
      seqclf report runs/mr && xdg-open runs/mr/report.html
    """
    from .report import write_report

    click.echo(f"written {write_report(run_dir)}")
