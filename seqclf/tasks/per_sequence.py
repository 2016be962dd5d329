"""One label per sequence (many-to-one): sentiment of a text, activity of a series or window, direction of a
price window. All the behaviour is :class:`~seqclf.tasks.base.Task`'s; this module names it."""

from .base import Task


class PerSequence(Task):
    """A label for each sequence; the last recurrent layer's steps are pooled into one vector."""

    name = "many-to-one"
    description = "one label per sequence (texts, series or windows, price windows)"
    kinds = ("text", "sensor", "stock")
    #: LSTM-FCN on five UCR/UEA sets: 89.96% on average against bigru's 84.51 (benchmarks/timeseries_accuracy.py, 3 seeds)
    kind_archs = {"sensor": "lstm+fcn"}
