"""Train / validation / test splits that keep every class's share (stratified)."""

from sklearn.model_selection import train_test_split

from ..errors import ConfigError, DataError


def stratified_split(frame, labels, size, seed, source, part):
    """Split ``frame`` into ``(rest, held_out)`` with ``size`` (a fraction) held out, by class.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"y": list("aabbaabbaabb")})
    >>> rest, held = stratified_split(frame, frame["y"], 0.25, 0, "data", "test")
    >>> len(rest), sorted(held["y"])
    (9, ['a', 'a', 'b'])
    """
    if not 0.0 < size < 1.0:
        raise ConfigError(f"The '{part}_size' parameter must be in (0, 1). Got {size!r} instead.")
    counts = labels.value_counts()
    n_held = int(round(size * len(frame))) if size * len(frame) >= 1 else 1
    if counts.min() < 2 or n_held < len(counts) or len(frame) - n_held < len(counts):
        raise DataError(
            f"{source} is too small for a stratified {part} split ({len(frame)} rows; smallest class "
            f"{counts.idxmin()!r} has {counts.min()}); add data, change --{part}-size or pass --{part} FILE"
        )
    rest, held = train_test_split(frame, test_size=n_held, random_state=seed, stratify=labels)
    return rest, held
