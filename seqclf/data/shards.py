"""Data larger than memory: a glob or folder of CSV/TSV/Parquet shards, read a chunk at a time.

``seqclf fit "data/part-*.parquet"`` (or ``data/``) never holds the whole table: every pass
(row count, labels, vocabulary, each training epoch) reads the shards chunk by chunk
(``pyarrow`` record batches for Parquet, ``pandas`` chunks for CSV). Which rows are held out
for validation and testing is decided by a hash of each row's number over all shards (with
the seed), so every pass and every worker of a cluster agrees without keeping a list. The
held-out parts are ``val_size`` and ``test_size`` shares of the rows, capped at
:data:`MAX_HELD_OUT` rows each: they are read into memory once, for early stopping and the
test report.
"""

import glob
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .readers import detect_format

log = logging.getLogger(__name__)
SHARD_FORMATS = ("csv", "tsv", "parquet")
CHUNK_ROWS = 50_000
#: At most this many rows each for validation and test (a test set of 20,000 gives accuracy to about +-0.7 points).
MAX_HELD_OUT = 20_000


def shard_files(path, format=None):
    """The files a glob (``data/part-*.parquet``) or a folder names, sorted; ``None`` for a single file."""
    text = str(path)
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
    elif Path(text).is_dir():
        files = sorted(p for p in Path(text).iterdir() if p.is_file() and not p.name.startswith((".", "_")))
    else:
        return None
    if not files:
        raise DataError(f"{path} names no files; give a glob such as 'data/part-*.parquet' (quoted) or a folder of shards")
    formats = {format or detect_format(f) for f in files}
    if len(formats) > 1 or not formats <= set(SHARD_FORMATS):
        raise DataError(f"the shards in {path} must all be one of {', '.join(SHARD_FORMATS)}; found "
                        f"{', '.join(sorted(formats))} (pass --format to read them all as one)")
    return files


class Shards:
    """The rows of several files as one table that is only ever read a chunk at a time.

    Each row belongs to one part, ``train``, ``val`` or ``test`` (see :meth:`parts`).

    Examples
    --------
    >>> shards = Shards(["part-0.parquet", "part-1.parquet"], seed=0)  # doctest: +SKIP
    >>> for frame, parts, where in shards.chunks():  # doctest: +SKIP
    ...     train_rows = frame[parts == "train"]
    """

    def __init__(self, files, format=None, encoding="utf-8", seed=0, chunk_rows=None):
        self.files, self.encoding, self.seed = [Path(f) for f in files], encoding, seed
        self.chunk_rows = chunk_rows or CHUNK_ROWS
        self.format = format or detect_format(self.files[0])
        self.sizes = [self._count(f) for f in self.files]
        self.n_rows = int(sum(self.sizes))
        if self.n_rows == 0:
            raise DataError(f"the {len(self.files)} shard(s) from {self.files[0].parent} have no data rows")
        self.shares = {"val": 0.0, "test": 0.0}

    def hold_out(self, val_size, test_size):
        """Hold out these shares of the rows for validation and testing (0: none), each capped at MAX_HELD_OUT rows."""
        self.shares = {part: min(size, MAX_HELD_OUT / self.n_rows) for part, size in (("val", val_size),
                                                                                     ("test", test_size))}
        return self

    def parts(self, rows):
        """``"train"``, ``"val"`` or ``"test"`` for each global row number in ``rows``."""
        draw = _uniform(np.asarray(rows, dtype=np.uint64), self.seed)
        test, val = self.shares["test"], self.shares["test"] + self.shares["val"]
        return np.where(draw < test, "test", np.where(draw < val, "val", "train"))

    def count(self, part):
        """How many rows ``part`` holds."""
        return int(sum((self.parts(np.arange(start, start + self.chunk_rows)[: self.n_rows - start]) == part).sum()
                       for start in range(0, self.n_rows, self.chunk_rows)))

    def chunks(self, order=None):
        """``(frame, parts, where)`` for each chunk of at most ``chunk_rows`` rows, files in ``order`` (default:
        sorted); ``where`` names the file, and the chunk's first data row when it is not the file's first."""
        starts = np.concatenate([[0], np.cumsum(self.sizes)])
        for index in (range(len(self.files)) if order is None else order):
            row = int(starts[index])
            for frame in self._read(self.files[index]):
                frame.columns = [str(c) for c in frame.columns]
                first = row - int(starts[index])
                where = str(self.files[index]) + (f" (the chunk from data row {first + 1})" if first else "")
                yield frame.reset_index(drop=True), self.parts(np.arange(row, row + len(frame))), where
                row += len(frame)

    def frame(self, part, prepare):
        """All rows of ``part`` (held-out parts are small) as one frame; each chunk is checked by ``prepare`` whole,
        so that rows in its messages count from the chunk's start."""
        pieces = [prepare(frame, where)[parts == part].reset_index(drop=True)
                  for frame, parts, where in self.chunks() if (parts == part).any()]
        if not pieces:
            raise DataError(f"the shards hold no rows for {part!r}; more rows or a larger --{part}-size are needed")
        return pd.concat(pieces, ignore_index=True)

    def _count(self, path):
        if self.format == "parquet":
            return self._parquet(path).metadata.num_rows
        return sum(len(frame) for frame in self._read(path, columns=[0]))

    def _read(self, path, columns=None):
        try:
            if self.format == "parquet":
                for batch in self._parquet(path).iter_batches(batch_size=self.chunk_rows):
                    yield batch.to_pandas()
                return
            sep = "\t" if self.format == "tsv" else ","
            yield from pd.read_csv(path, sep=sep, chunksize=self.chunk_rows, encoding=self.encoding, usecols=columns,
                                   keep_default_na=False, na_values=[""])
        except UnicodeDecodeError as error:
            raise DataError(f"{path} is not valid {self.encoding} (byte 0x{error.object[error.start]:02x}); "
                            f"pass --encoding") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise DataError(f"{path} is not a valid {self.format.upper()} file: {error}") from None

    def _parquet(self, path):
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path)
        except Exception as error:  # pyarrow raises many unrelated types for a bad file
            raise DataError(f"{path} is not a valid Parquet file: {error}") from None


class RowStream:
    """The training rows of :class:`Shards`, prepared by an adapter chunk by chunk; ``len`` is their number."""

    def __init__(self, shards, adapter):
        self.shards, self.adapter, self.n = shards, adapter, shards.count("train")
        if self.n < 2:
            raise DataError(f"the shards hold {self.n} training row(s); a classifier needs more")

    def __len__(self):
        return self.n

    def chunks(self, rng=None):
        """Prepared training rows, a chunk at a time; with ``rng`` the files come in a random order."""
        order = None if rng is None else rng.permutation(len(self.shards.files))
        for frame, parts, where in self.shards.chunks(order):
            if (parts == "train").any():
                yield self.adapter.prepare(frame, where)[parts == "train"].reset_index(drop=True)

    def label_counts(self):
        """``{raw label: count}`` over all training rows, in one pass."""
        log.info("learning classes, vocabulary and lengths from %s training rows: three passes over the shards",
                 f"{self.n:,}")
        counts = pd.Series(dtype="int64")
        for chunk in self.chunks():
            counts = counts.add(chunk[self.adapter.label_col].value_counts(), fill_value=0)
        return counts.astype("int64")


def _uniform(rows, seed):
    """A number in [0, 1) for each row number: the splitmix64 hash of ``row + seed * 2**32``."""
    with np.errstate(over="ignore"):
        z = rows + np.uint64(seed % 2**32) * np.uint64(2**32) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)
