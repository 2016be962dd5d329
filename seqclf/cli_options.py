"""The options of the ``seqclf`` commands, derived from the one declaration of each parameter (:mod:`seqclf.params`)."""

import click

from .data.readers import FORMATS
from .params import PARAMS
from .tasks import TASKS


class Units(click.ParamType):
    """``128,64``: units per recurrent layer."""

    name = "units"

    def convert(self, value, param, ctx):
        from .models.builders import parse_units

        return value if isinstance(value, tuple) else parse_units(value)


class TaskChoice(click.Choice):
    """The registered tasks, read when the command runs (a task registered after import is a choice too)."""

    def __init__(self):
        super().__init__(())

    @property
    def choices(self):
        return tuple(TASKS)

    @choices.setter
    def choices(self, value):
        pass


def _click_type(p):
    if p.name == "task":
        return TaskChoice()
    if p.type == "units":
        return Units()
    if p.choices:
        return click.Choice(p.choices)
    return click.IntRange(0, 2) if p.name == "verbose" else p.type


def param_options(command):
    """One option per parameter of :data:`seqclf.params.PARAMS` but ``label_col`` (a data option)."""
    for p in reversed([p for p in PARAMS.values() if p.name != "label_col"]):
        default = None if p.default is None else (",".join(map(str, p.default)) if p.type == "units" else p.default)
        kinds = f"[{', '.join(p.kinds)}] " if p.kinds else ""
        command = click.option(p.flag, p.name, type=_click_type(p), default=default, show_default=default is not None,
                               help=kinds + p.help)(command)
    return command


def data_options(command):
    """Options every command that reads a data file shares."""
    for decorator in reversed((
        click.option("--format", "format", type=click.Choice(FORMATS),
                     help="File format [default: from the suffix]."),
        click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the file."),
        click.option("--label-col", help=PARAMS["label_col"].help),
    )):
        command = decorator(command)
    return command
