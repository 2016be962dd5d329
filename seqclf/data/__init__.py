"""Readers turn files into tables; adapters turn tables into model inputs and targets.

Importing this package registers the adapters; ``--kind auto`` tries them in this order
(stock first: its date and price columns are the most specific, and dates like "Jan 1 2000"
would otherwise look like text; token lists before text, whose names they may share). The
character language model (``chars``) is chosen by name only (``--task next-char``).
"""

from . import stock, tokens, text, sensor, chars  # noqa: F401
