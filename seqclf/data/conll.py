"""CoNLL-U and CoNLL column files: one row per sentence, one list per column (see :mod:`seqclf.data.readers`)."""

import pandas as pd

from ..errors import DataError

CONLLU_FIELDS = ("id", "tokens", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
DOCSTART = "-DOCSTART-"
SNIFF_BYTES = 1 << 16


def name(path):
    return "standard input" if str(path) == "-" else str(path)


def sniff_conll(path):
    r"""Whether the start of ``path`` looks like CoNLL columns: every token line has the same two or more
    whitespace-separated fields, and a blank line stands between two sentences.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write("He PRP B-NP\nran VBD B-VP\n\nIt PRP B-NP\n")
    >>> sniff_conll(f.name), os.remove(f.name)
    (True, None)
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write("The cat sat .\nA dog ran .\n")  # one sentence per line: plain text
    >>> sniff_conll(f.name), os.remove(f.name)
    (False, None)
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES).decode("utf-8", errors="replace")
    except OSError:  # missing or unreadable: the reader says so
        return False
    lines = [line for line in head.split("\n")[:-1 if len(head) == SNIFF_BYTES else None] if not line.startswith("#")]
    widths = {len(line.split()) for line in lines if line.strip()}
    filled = [bool(line.strip()) for line in lines]
    between = any(not here and before and after for before, here, after in zip(filled, filled[1:], filled[2:]))
    return len(widths) == 1 and widths.pop() >= 2 and between


def read_conllu(text, path):
    def parse(fields, number):
        if len(fields) != len(CONLLU_FIELDS):
            raise DataError(f"{name(path)} line {number} has {len(fields)} tab-separated columns; CoNLL-U token "
                            f"lines have {len(CONLLU_FIELDS)} (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC)")
        if "-" in fields[0] or "." in fields[0]:  # a multiword token's range or an empty node: not a token
            return None
        return fields[1:]
    return _sentence_frame(_sentences(text, path, lambda line: line.rstrip("\r").split("\t"), parse),
                           CONLLU_FIELDS[1:])


def read_conll(text, path):
    width = {}

    def parse(fields, number):
        if fields[0] == DOCSTART:
            return None
        width.setdefault("columns", (len(fields), number))
        expected, first = width["columns"]
        if len(fields) != expected:
            raise DataError(f"{name(path)} line {number} has {len(fields)} columns but line {first} has {expected}; "
                            f"every token line needs the same columns (token first, tag last)")
        return fields
    sentences = _sentences(text, path, str.split, parse)
    n_columns = width.get("columns", (1,))[0]
    names = ["tokens"] + [f"column_{k}" for k in range(2, n_columns)] + (["tags"] if n_columns > 1 else [])
    return _sentence_frame(sentences, names)


def _sentences(text, path, split, parse):
    """``[(sent_id, [fields, ...]), ...]`` from blank-line separated blocks; ``#`` lines are comments."""
    sentences, rows, sent_id, started = [], [], None, None
    for number, line in enumerate(text.split("\n") + [""], start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            key, _, value = stripped[1:].partition("=")
            if key.strip() == "sent_id":
                sent_id = value.strip()
            started = started or number
            continue
        if not stripped:
            if rows:
                sentences.append((sent_id, rows))
            elif sent_id is not None:
                raise DataError(f"{name(path)} line {started}: sentence {sent_id!r} has no tokens; "
                                f"remove it or add its token lines")
            rows, sent_id, started = [], None, None
            continue
        fields = parse(split(line), number)
        if fields is not None:
            rows.append(fields)
            started = started or number
    if not sentences:
        raise DataError(f"{name(path)} has no sentences: token lines, with a blank line after each sentence")
    return sentences


def _sentence_frame(sentences, names):
    ids = [sent_id if sent_id is not None else str(number) for number, (sent_id, _) in enumerate(sentences, 1)]
    columns = {"id": ids}
    for k, name in enumerate(names):
        columns[name] = [[fields[k] for fields in rows] for _, rows in sentences]
    return pd.DataFrame(columns)
