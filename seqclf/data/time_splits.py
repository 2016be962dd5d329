"""Chronological splits of windows ordered in time, purged so that no price is used on both sides.

A frame of windows has ``id`` (the instrument), ``start`` (the window's first step) and
``date`` (its last step's date); ``gap`` is how many steps after its first price a window's
label still reads (``window - 1 + horizon`` for stock windows).
"""

import numpy as np

from ..errors import ConfigError, DataError


def chronological_split(frame, size, gap, source, part):
    """``(earlier, held_out)``: the latest ``size`` share of window end dates held out, with a purge gap.

    Windows are cut at one date for all instruments. An earlier window is kept only if the last
    price its label reads comes before the first price of the instrument's first held-out window,
    so nothing is seen on both sides.
    """
    if not 0.0 < size < 1.0:
        raise ConfigError(f"The '{part}_size' parameter must be in (0, 1). Got {size!r} instead.")
    dates = np.sort(frame["date"].to_numpy())
    cutoff = dates[min(len(dates) - 1, int(round(len(dates) * (1 - size))))]
    held = frame[frame["date"] >= cutoff]
    earlier = purge(frame[frame["date"] < cutoff], held, gap)
    if held.empty or earlier.empty:
        raise DataError(f"{source} is too short for a chronological {part} split: {len(frame)} windows, and "
                        f"{gap + 1} are dropped at each boundary so that no price is used on both sides; add "
                        f"history, shrink --window or pass --{part} FILE")
    return earlier, held


def purge(earlier, later, gap):
    """The windows of ``earlier`` that share no price (input or label) with any window of ``later``."""
    first_start = later.groupby("id")["start"].min()
    limit = earlier["id"].map(first_start)  # the first step of the instrument that ``later`` uses
    return earlier[limit.isna() | (earlier["start"] + gap < limit)]


def walk_forward(frame, folds, gap, source):
    """``folds`` expanding-window ``(earlier, test)`` pairs in time order.

    The window end dates are cut into ``folds + 1`` consecutive blocks; fold k tests on block k
    and learns from everything before it (purged as in :func:`chronological_split`).
    """
    if not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ConfigError(f"The 'walk_forward' parameter must be an integer >= 2. Got {folds!r} instead.")
    dates = np.unique(frame["date"].to_numpy())
    blocks = np.array_split(dates, folds + 1)
    if min(len(b) for b in blocks) < 2:
        raise DataError(f"{source} has {len(dates)} dates: too few for {folds} walk-forward folds")
    pairs = []
    for block in blocks[1:]:
        test = frame[frame["date"].between(block[0], block[-1])]
        earlier = purge(frame[frame["date"] < block[0]], test, gap)
        if earlier.empty:
            raise DataError(f"{source}: the first walk-forward fold has nothing to learn from once {gap + 1} "
                            f"steps are purged; use fewer folds")
        pairs.append((earlier, test))
    return pairs
