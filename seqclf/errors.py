"""The library's exceptions.

Every mistake a user can make (a bad file, a bad option value) raises a subclass of
:class:`SeqclfError` whose message says what is wrong, where, and how to fix it. The CLI turns
these into one line on stderr and exit code 2.
"""


class SeqclfError(Exception):
    """Base class of all errors caused by user input."""


class DataError(SeqclfError, ValueError):
    """A data file or table cannot be used as given (missing, empty, malformed, unlabeled)."""


class ConfigError(SeqclfError, ValueError):
    """An option or parameter has a value the library cannot use."""


class RunDirectoryError(SeqclfError, OSError):
    """A run directory is missing, incomplete, or would be overwritten."""


class TrainingError(SeqclfError, ArithmeticError):
    """Training could not produce a usable model (the loss became NaN or infinite before any epoch ended well)."""
