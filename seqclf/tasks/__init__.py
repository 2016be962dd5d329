"""Tasks: what a model predicts from a sequence, each one object in one module, found here by name.

A task (:class:`~seqclf.tasks.base.Task`) says which kinds of data it trains on, whether it
labels each sequence or each step, how its targets are checked and scored, what its reports
and prediction tables hold, and how the server answers for it. ``seqclf fit --task``,
``SequenceClassifier(task=...)``, ``seqclf.load``, ``evaluate``, ``predict``, ``serve`` and
``explain`` all ask the task object. A new task is a module with a :class:`Task` subclass and
one :func:`register_task` line (see "Adding a task" in the README).
"""

from ..errors import ConfigError
from .base import Task
from .next_char import NextCharacter
from .per_sequence import PerSequence
from .per_step import PerStep
from .seq2seq import SequenceToSequence
from .tag import Tag

__all__ = ["NextCharacter", "PerSequence", "PerStep", "SequenceToSequence", "TASKS", "Tag", "Task", "for_outputs",
           "get_task", "kind_of", "of_run", "register_task", "resolve", "tasks_for"]

TASKS = {}


def register_task(task):
    """Add the task object ``task`` to the registry under ``task.name``; return it."""
    if not isinstance(task, Task):
        raise TypeError(f"register_task takes a Task instance, not {type(task).__name__}")
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered already")
    TASKS[task.name] = task
    return task


for _task in (PerSequence(), PerStep(), Tag(), NextCharacter(), SequenceToSequence()):
    register_task(_task)


def get_task(task):
    """The registered task named ``task`` (a :class:`Task` is returned as it is)."""
    if isinstance(task, Task):
        return task
    if task not in TASKS:
        raise ConfigError(f"The 'task' parameter must be one of {', '.join(TASKS)}. Got {task!r} instead.")
    return TASKS[task]


def tasks_for(kind):
    """The names of the tasks that train on ``kind`` data, in registration order."""
    return tuple(name for name, task in TASKS.items() if kind in task.kinds)


def resolve(task, kind):
    """The task for ``kind`` data (``"auto"``: any): ``task`` itself if it takes that kind, else the registered task
    that refines it (a subclass) for the kind: a label per step of token lists is the tagger, of characters the
    language model; ``task=None``: the kind's first."""
    if task is None:
        names = tasks_for(kind)
        if not names:
            raise ConfigError(f"no registered task trains on {kind} data")
        return TASKS[names[0]]
    task = get_task(task)
    if kind == "auto" or kind in task.kinds:
        return task
    refined = [t for t in TASKS.values() if isinstance(t, type(task)) and kind in t.kinds]
    if refined:
        return refined[0]
    raise ConfigError(f"--task {task.name} does not apply to {kind} data; it takes "
                      f"{', '.join(tasks_for(kind)) or 'no task'} (and --task {task.name} takes "
                      f"{', '.join(task.kinds)} data)")


def kind_of(task):
    """The kind of data ``--kind auto`` means for ``task``: its only kind, unless a registered task refines it for
    other kinds (a label per step of sensor series, token lists or characters); ``None``: detect it from the data."""
    refined = any(isinstance(t, type(task)) and t is not task for t in TASKS.values())
    return task.kinds[0] if len(task.kinds) == 1 and not refined else None


def of_run(config):
    """The task of a run's ``config.json``; runs written before tasks were objects recorded a per-step flag only."""
    name = config.get("task") or config.get("settings", {}).get("task")
    return resolve(name, config["kind"])


def for_outputs(outputs):
    """The server's view of an export: the first task that :meth:`~Task.serves` a signature with ``outputs``
    (``{name: TensorSpec}``; ``None``: none)."""
    return next((task for task in TASKS.values() if task.serves(outputs)), None)
