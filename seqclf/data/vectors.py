"""Pretrained word vectors for the embedding layer: word2vec (text and binary), GloVe and fastText ``.vec`` files.

The file is read once, streamed: only the rows of the learned vocabulary are kept, so a file of
millions of words costs the memory of the vocabulary's rows. A word is looked up as it is, then
lowercased (a vocabulary of lowercased words finds "Paris" under "paris"); words the file lacks
get random vectors at the file's own scale (normal, the standard deviation of the vectors found),
as Kim (2014) did for words missing from word2vec. The formats:

- word2vec text and fastText ``.vec``: a first line ``COUNT DIM``, then ``word v1 ... vDIM`` per line;
- GloVe: the same lines without the first one;
- word2vec binary: the line ``COUNT DIM``, then per word its bytes, a space and DIM little-endian
  float32 values (and, in most files, a newline).

Any of them may be gzip-compressed (a name ending in ``.gz``).
"""

import gzip
import hashlib
import io
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

log = logging.getLogger(__name__)

CHUNK = 1 << 20


@dataclass
class Vectors:
    """The rows of a vector file for a vocabulary, and what the run records about the file."""

    matrix: np.ndarray  # (len(vocabulary) + len(extra), dim); rows the file lacks drawn at its scale
    found: np.ndarray  # (len(vocabulary) + len(extra),) bool: which rows came from the file
    record: dict  # file name, bytes, sha256, format, dim, words in the file, share of the vocabulary covered
    extra: list = ()  # words of the file the vocabulary lacked, their rows after the vocabulary's (``extend``)


def read_vectors(path, vocabulary, reserved=0, rng=None, extend=0):
    """The vectors of ``vocabulary`` (a list of words) from the file ``path``; the first ``reserved`` entries
    (padding, unknown word) are not counted in the coverage. ``extend``: also the first (in most files the most
    frequent) ``extend`` words of the file, lowercased, that the vocabulary lacks, in ``extra``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.vec"
    >>> _ = path.write_text("2 3\\nfilm 1 0 0\\nDull 0 1 0\\n")
    >>> vectors = read_vectors(path, ["film", "dull", "plot"])
    >>> vectors.matrix[:2].tolist(), vectors.found.tolist(), vectors.record["coverage"]
    ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [True, True, False], 0.6667)
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--embeddings {path}: no such file; give a word2vec, GloVe or fastText .vec file")
    wanted = {}
    for index, word in enumerate(vocabulary):
        wanted.setdefault(word, index)
    lowered = {}
    for index, word in enumerate(vocabulary):
        lowered.setdefault(word.lower(), index)
    digest = hashlib.sha256()
    with open(path, "rb") as raw:
        hashing = _Hashing(raw, digest)
        stream = gzip.GzipFile(fileobj=hashing.buffer) if path.suffix == ".gz" else hashing
        first = _read(stream.readline, path)
        header = _header(first)
        binary = header is not None and _looks_binary(stream)
        rows, dim = (_binary_rows if binary else _text_rows)(stream, first, header, path)
        exact, fallback, extra, count = {}, {}, {}, 0
        try:
            for word, values in _checked(rows, dim, path):
                if word in wanted and wanted[word] not in exact:
                    exact[wanted[word]] = values
                elif word.lower() in lowered and lowered[word.lower()] not in fallback:
                    fallback[lowered[word.lower()]] = values
                elif len(extra) < extend and word.lower() not in lowered:
                    extra.setdefault(word.lower(), values)
                count += 1
        except (OSError, EOFError, zlib.error) as error:  # a truncated or damaged archive
            raise DataError(f"--embeddings {path}: cannot read it ({error})") from None
        while hashing.read(CHUNK):  # the rest of the file, for its checksum
            pass
    found_rows = {**fallback, **exact}
    if not found_rows:
        raise DataError(f"--embeddings {path}: none of the {len(vocabulary)} vocabulary words has a vector in it; "
                        f"is it a vector file of this language (and this tokenisation)?")
    dim = dim or len(next(iter(found_rows.values())))
    found = np.zeros(len(vocabulary), bool)
    found[list(found_rows)] = True
    known = np.stack([found_rows[i] for i in sorted(found_rows)]).astype("float32")
    rng = rng or np.random.default_rng(int(np.random.randint(2**31)))  # NumPy is seeded by seed_everything
    matrix = rng.normal(0.0, float(known.std()) or 1.0, (len(vocabulary), dim)).astype("float32")
    matrix[found] = known
    record = {"file": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest(),
              "format": "word2vec binary" if binary else "text (word2vec, fastText .vec or GloVe)", "dim": dim,
              "words_in_file": count, "coverage": round(float(found[reserved:].mean()), 4)}
    if extra:
        matrix = np.concatenate([matrix, np.stack(list(extra.values())).astype("float32")])
        found = np.concatenate([found, np.ones(len(extra), bool)])
        record["words_added"] = len(extra)
    return Vectors(matrix, found, record, list(extra))


class _Hashing(io.RawIOBase):
    """A binary file read through, every byte also fed to ``digest``."""

    def __init__(self, raw, digest):
        self.raw, self.digest = raw, digest
        self.buffer = io.BufferedReader(self, CHUNK)

    def readable(self):
        return True

    def readinto(self, target):
        data = self.raw.read(len(target))
        self.digest.update(data)
        target[:len(data)] = data
        return len(data)

    def readline(self):
        return self.buffer.readline()

    def read(self, n=-1):
        return self.buffer.read(n)

    def peek(self, n):
        return self.buffer.peek(n)


def _read(read, path):
    try:
        return read()
    except (OSError, EOFError) as error:  # gzip's "not a gzipped file", a truncated archive
        raise DataError(f"--embeddings {path}: cannot read it ({error})") from None


def _header(line):
    """``(count, dim)`` of a first line ``COUNT DIM``, else ``None`` (GloVe has no such line)."""
    parts = line.split()
    if len(parts) == 2 and all(part.isdigit() for part in parts):
        return int(parts[0]), int(parts[1])
    return None


def _looks_binary(stream):
    """Whether what follows the header is word2vec's binary layout: its first values do not decode as text."""
    sample = stream.peek(4096)[:4096]
    if b"\x00" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start < len(sample) - 4  # not just a character cut at the sample's end
    return False


def _text_rows(stream, first, header, path):
    def rows():
        number = 1
        lines = iter(stream.readline, b"")
        if header is None:  # GloVe: the first line is a vector
            lines = _chain([first], lines)
            number = 0
        for line in lines:
            number += 1
            try:
                word, *values = line.decode("utf-8").rstrip("\r\n").rstrip(" ").split(" ")
            except UnicodeDecodeError:
                raise DataError(f"--embeddings {path} line {number}: not UTF-8 text (a word2vec binary file needs "
                                f"its 'COUNT DIM' first line)") from None
            yield number, word, values
    return rows(), header[1] if header else None


def _binary_rows(stream, first, header, path):
    count, dim = header
    size = 4 * dim

    def rows():
        for number in range(1, count + 1):
            word = bytearray()
            while True:
                byte = stream.read(1)
                if not byte:
                    raise DataError(f"--embeddings {path}: the word2vec binary file ends at word {number} of the "
                                    f"{count} its header announces")
                if byte == b" ":
                    break
                if byte != b"\n" or word:
                    word += byte
            values = stream.read(size)
            if len(values) != size:
                raise DataError(f"--embeddings {path}: word {number} has {len(values) // 4} of its {dim} values; "
                                f"the file is cut short or not word2vec binary")
            try:
                text = word.decode("utf-8")
            except UnicodeDecodeError:
                text = word.decode("latin-1")
            yield number, text, np.frombuffer(values, "<f4")
    return rows(), dim


def _checked(rows, dim, path):
    """``(word, float32 vector)`` of each row; a row of another length, or values that are not numbers, is an error."""
    for number, word, values in rows:
        if isinstance(values, np.ndarray):
            yield word, values
            continue
        if dim is None:
            dim = len(values)
        if len(values) != dim or not word:
            raise DataError(f"--embeddings {path} line {number}: {len(values)} values where the file's vectors have "
                            f"{dim}; every line must be a word and {dim} numbers separated by spaces")
        try:
            yield word, np.asarray(values, dtype="float32")
        except ValueError:
            raise DataError(f"--embeddings {path} line {number}: values that are not numbers after {word!r}") from None


def _chain(first, rest):
    yield from first
    yield from rest


def pretrained(adapter, vocabulary, reserved):
    """``(matrix, record)`` of ``adapter.embeddings`` for ``vocabulary`` (its first ``reserved`` entries padding and
    unknown word), or ``(None, None)`` without a file: see :func:`pretrained_vectors`."""
    if not adapter.embeddings:
        if adapter.freeze_embeddings:
            raise ConfigError("--freeze-embeddings keeps pretrained vectors as they are; give them with --embeddings "
                              "FILE (or leave --freeze-embeddings out)")
        return None, None
    vectors = pretrained_vectors(adapter, vocabulary, reserved)
    return vectors.matrix, vectors.record


def pretrained_vectors(adapter, vocabulary, reserved, extend=0):
    """The :class:`Vectors` of ``adapter.embeddings`` (a file) for ``vocabulary``, ``extend`` as :func:`read_vectors`
    takes it, their record telling whether they stay frozen; ``--embedding-dim`` must be the default or the file's."""
    from ..params import PARAMS

    vectors = read_vectors(adapter.embeddings, vocabulary, reserved, extend=extend)
    dim = vectors.record["dim"]
    if adapter.embedding_dim not in (PARAMS["embedding_dim"].default, dim):
        raise ConfigError(f"--embedding-dim {adapter.embedding_dim} does not match the {dim} values per word of "
                          f"--embeddings {adapter.embeddings}; leave --embedding-dim out")
    log.info("--embeddings %s: %d values per word, found for %.1f%% of the %d vocabulary words%s%s",
             vectors.record["file"], dim, 100 * vectors.record["coverage"], len(vocabulary) - reserved,
             f" and {len(vectors.extra)} more words of the file" if vectors.extra else "",
             " (frozen)" if adapter.freeze_embeddings else " (fine-tuned)")
    vectors.record["frozen"] = bool(adapter.freeze_embeddings)
    return vectors


def embedding_inputs(adapter):
    """The builder's embedding arguments for a fitted ``adapter``: its size, and the pretrained vectors if any."""
    matrix = getattr(adapter, "_vectors", None)
    if matrix is None:
        return {"embedding_dim": adapter.embedding_dim}
    return {"embedding_dim": matrix.shape[1], "embedding_weights": matrix,
            "freeze_embeddings": bool(adapter.freeze_embeddings)}
