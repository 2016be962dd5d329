"""The options of the ``seqclf`` commands, derived from the one declaration of each parameter (:mod:`seqclf.params`)."""

import click

from .params import PARAMS
from .tasks import TASKS

DATA = ("format", "encoding", "label_col")


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


def _option(p):
    """The click option of ``p``. A kind's setting has no click default (the kind applies its own), so that one the
    user typed can be told from one left out, and refused if it does not apply to the data."""
    default = None if p.default is None else (",".join(map(str, p.default)) if p.type == "units" else p.default)
    kinds = f"[{', '.join(p.kinds)}] " if p.kinds else ""
    paths = {"val": click.Path(dir_okay=False), "test": click.Path(dir_okay=False), "out": click.Path(file_okay=False)}
    shown = f" [default: {default}]" if p.group == "kind" and default is not None else ""
    if p.type is bool:  # a switch: present or not (None when left out, so a kind can tell)
        return click.option(p.flag, p.name, is_flag=True, default=None, help=kinds + p.help)
    return click.option(p.flag, p.name, type=paths.get(p.name) or _click_type(p),
                        default=None if p.group == "kind" else default,
                        show_default=p.group != "kind" and default is not None, help=kinds + p.help + shown)


def param_options(command):
    """One option per parameter of :data:`seqclf.params.PARAMS` but the data options (see :func:`data_options`)."""
    for p in reversed([p for p in PARAMS.values() if p.name not in DATA]):
        command = _option(p)(command)
    return command


def data_options(command):
    """Options every command that reads a data file shares."""
    for name in reversed(DATA):
        command = _option(PARAMS[name])(command)
    return command


def column_options(command):
    """``--text-col`` and ``--series-col`` for commands that read data for a finished run."""
    for name in ("series_col", "text_col"):
        p = PARAMS[name]
        command = click.option(p.flag, p.name, help=f"[{', '.join(p.kinds)}] {p.help} (as in the run when the "
                                                      f"data has that column)")(command)
    return command
