"""A quiet console: TensorFlow's start-up notes and benign C++ log lines kept out of terminals and notebooks.

TensorFlow prints notes at import (absl's "All log messages before absl::InitializeLog()", oneDNN
and CPU-feature notes) straight to file descriptor 2, before any log level applies, and later
C++ lines that are not mistakes of the user (a tf.data attribute it ignores, a oneDNN fallback);
Jupyter's kernel forwards them into the cells. :func:`import_tensorflow_quietly` imports it with
descriptor 2 pointed at /dev/null and its C++ log level at errors-only-if-fatal (``TF_CPP_MIN_LOG_LEVEL=3``,
unless the environment sets another), and drops tf.function's retracing warnings from the
``tensorflow`` logger. Python warnings, exceptions and seqclf's own messages are untouched.
"""

import logging
import os
import sys


class _NoRetracing(logging.Filter):
    """Drops tf.function's "triggered tf.function retracing" warnings (seqclf traces per batch shape on purpose)."""

    def filter(self, record):
        return "retracing" not in record.getMessage()


def import_tensorflow_quietly():
    """Import TensorFlow (once) without its start-up notes, and quiet its benign logs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        try:
            saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        except OSError:  # no descriptor 2 to point elsewhere
            saved = None
        try:
            if saved is not None:
                os.dup2(devnull, 2)
            import tensorflow  # noqa: F401
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
                os.close(devnull)
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _NoRetracing) for f in logger.filters):
        logger.addFilter(_NoRetracing())
