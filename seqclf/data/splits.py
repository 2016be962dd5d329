"""Train / validation / test splits that keep every class's share (stratified), and keep series whole."""

import pandas as pd
from sklearn.model_selection import train_test_split

from ..errors import ConfigError, DataError


def stratified_split(frame, labels, size, seed, source, part, unit="rows"):
    """Split ``frame`` into ``(rest, held_out)`` with ``size`` (a fraction) held out, by class.

    At least one row of every class is held out, so on small data with many classes the held
    out share can exceed ``size``.

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
    n_held = max(int(round(size * len(frame))), len(counts))  # at least one row of every class
    if counts.min() < 2 or len(frame) - n_held < len(counts):
        raise DataError(
            f"{source} is too small for a stratified {part} split ({len(frame)} {unit}; smallest class "
            f"{counts.idxmin()!r} has {counts.min()}); add data, change --{part}-size or pass --{part} FILE"
        )
    rest, held = train_test_split(frame, test_size=n_held, random_state=seed, stratify=labels)
    return rest, held


def group_split(frame, labels, groups, size, seed, source, part):
    """Like :func:`stratified_split`, but rows of one group (the windows of one series) stay together.

    Groups are split, stratified by each group's most common label where every class has two
    groups at least, at random otherwise; ``size`` is the share of groups held out.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"id": [1, 1, 2, 2, 3, 3, 4, 4], "y": list("aabbaabb")})
    >>> rest, held = group_split(frame, frame["y"], frame["id"], 0.25, 0, "data", "test")
    >>> sorted(set(rest["id"]) & set(held["id"])), len(held)  # one series of each class
    ([], 4)
    """
    if groups is None or not groups.duplicated().any():
        return stratified_split(frame, labels, size, seed, source, part, unit="rows" if groups is None else "series")
    table = pd.DataFrame({"group": groups.to_numpy(), "label": labels.to_numpy()})
    by_group = table.groupby("group", sort=False)["label"].agg(lambda v: v.value_counts().idxmax())
    if len(by_group) < 3:
        raise DataError(
            f"{source} holds {len(by_group)} series; splitting off a {part} set by series needs at least 3 "
            f"(windows of one series never go to both sides): add series or pass --{part} FILE"
        )
    names = pd.DataFrame({"group": by_group.index, "label": by_group.to_numpy()})
    try:
        _, held = stratified_split(names, names["label"], size, seed, source, part, unit="series")
    except DataError:  # too few series per class to stratify: hold out whole series at random
        n_held = max(1, int(round(size * len(names))))
        _, held = train_test_split(names, test_size=min(n_held, len(names) - 2), random_state=seed)
    chosen = groups.isin(set(held["group"])).to_numpy()
    return frame[~chosen], frame[chosen]
