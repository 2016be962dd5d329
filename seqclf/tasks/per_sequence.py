"""One label per sequence (many-to-one): sentiment of a text, activity of a series or window, direction of a
price window. All the behaviour is :class:`~seqclf.tasks.base.Task`'s; this module names it."""

from .base import Task


class PerSequence(Task):
    """A label for each sequence; the last recurrent layer's steps are pooled into one vector."""

    name = "many-to-one"
    description = "one label per sequence (texts, series or windows, price windows)"
    kinds = ("text", "sensor", "stock")
    #: LSTM-FCN with MiniRocket's kernels on five UCR/UEA sets: 93.33% on average against 89.96 for lstm+fcn and
    #: 84.51 for bigru (benchmarks/timeseries_accuracy.py, 3 seeds; benchmarks/results/timeseries_rocket_screen.json)
    kind_archs = {"sensor": "lstm+fcn+rocket"}
