"""Sequence to sequence (``--task seq2seq``): an output text of another length for each source text.

An encoder reads the source; a decoder with additive attention writes the output one symbol at
a time (:mod:`seqclf.models.seq2seq`), trained with teacher forcing on the real target steps
and decoded by beam search inside the model, so the export takes and returns strings. A source
that appears in several rows has several references; an output is right if it equals any.
Measures: exact match (its complement, the word error rate of grapheme-to-phoneme work), the
symbol error rate (edit distance to the closest reference over that reference's length) and
the share of outputs the length cap cut.
"""

from weakref import WeakKeyDictionary

import numpy as np
import pandas as pd
import tensorflow as tf

from ..errors import ConfigError
from .base import Task, examples

PREDICT_BATCH = 256
_translators = WeakKeyDictionary()  # model -> (Translator, its traced function)


class SequenceToSequence(Task):
    """An output text for each source text: an encoder-decoder with attention."""

    name = "seq2seq"
    description = "an output text of any length per source text: encoder-decoder with attention (--kind pairs)"
    kinds = ("pairs",)
    per_step = True  # a label per output step in training: the next symbol
    label_rank = None
    estimator = "seqclf.translator.SequenceTranslator"
    own_lengths = (0,)  # the source ids; the previous symbols have the targets' length
    searchable = False  # no accuracy or macro F1 to score a trial by
    #: Adam at 0.003, halved after each epoch without a lower validation loss: on 30,000 CMUdict words (12 epochs,
    #: beam 4) WER 37.1% against 42.7 at a constant 0.003 and 46.5 at a constant 0.001 (the other tasks' rate).
    defaults = {"class_weight": "none", "label_smoothing": 0.0, "learning_rate": 3e-3, "lr_schedule": "plateau"}

    def check_arch(self, architecture):
        from ..models.seq2seq import check_encoder

        check_encoder(architecture)

    def build(self, arch, adapter, units, dropout, recurrent_dropout, pooling, name):
        from ..models.seq2seq import build_seq2seq

        return build_seq2seq(arch, units=units, dropout=dropout, recurrent_dropout=recurrent_dropout, name=name,
                             **adapter.model_inputs())

    def check_held_out(self, adapter, known, held_out):
        """Nothing is refused: a target symbol training never saw only makes that output wrong."""

    # --- decoding ----------------------------------------------------------------------------

    def translator(self, model, adapter):
        """The :class:`~seqclf.models.seq2seq.Translator` of ``model`` and its traced function (one per model)."""
        from ..data.pairs import joiner
        from ..models.seq2seq import Translator

        if model not in _translators:
            translator = Translator(model, adapter.classes_, joiner(adapter.target_tokens), adapter.beam_size,
                                    adapter.max_target_length_)
            _translators[model] = (translator, tf.function(translator.__call__, reduce_retracing=True))
        return _translators[model]

    def predictions(self, model, adapter, frame, beam_size=None):
        """Each row's decoded ``output`` and ``score``, whether the cap ``capped`` it, and the ``attention`` with the
        symbols it aligns (lists, one entry per row); each distinct source is decoded once."""
        _, decode = self.translator(model, adapter)
        texts = adapter.raw_inputs(frame)
        distinct, where = np.unique(texts.astype(str), return_inverse=True) if len(texts) else (texts, texts)
        parts = [decode(tf.constant(distinct[i:i + PREDICT_BATCH]), beam_size or adapter.beam_size)
                 for i in range(0, len(distinct), PREDICT_BATCH)]
        found = {key: [] for key in ("output", "score", "capped", "attention", "source_symbols", "output_symbols")}
        for part in parts:
            for key in found:
                found[key] += list(part[key].numpy())
        found["output"] = [b.decode("utf-8") for b in found["output"]]
        return {key: [values[i] for i in where] for key, values in found.items()}

    def export(self, model, adapter, directory):
        """``serving_default``: source strings ``(None,)`` in, ``output`` strings and ``score`` out, decoded by beam
        search; ``attention``: the same with the alignment and the symbols it aligns."""
        from ..export import write_archive

        translator, _ = self.translator(model, adapter)
        spec = adapter.serving_spec()

        @tf.function(input_signature=[spec])
        def serve(source):
            found = translator(source)
            return {"output": found["output"], "score": found["score"]}

        @tf.function(input_signature=[spec])
        def attention(source):
            found = translator(source)
            return {key: found[key] for key in ("output", "score", "attention", "source_symbols", "output_symbols")}

        write_archive(model, {"serving_default": serve, "attention": attention}, directory)

    # --- results -----------------------------------------------------------------------------

    def evaluate(self, adapter, frame, predictions, source):
        """Exact match, word and symbol error rates over the distinct sources, and the share cut by the cap."""
        sources, references = adapter.references(frame)
        first = {s: i for i, s in reversed(list(enumerate(frame["source"])))}
        outputs = [predictions["output"][first[s]] for s in sources]
        capped = [bool(predictions["capped"][first[s]]) for s in sources]
        return scores(outputs, references, adapter.target_tokens, capped)

    def headline(self, metrics):
        return (f"exact match {metrics['exact_match']:.4f}, symbol error rate {metrics['symbol_error_rate']:.4f} "
                f"(n={metrics['n']})")

    def result_lines(self, metrics):
        return [f"exact match        {metrics['exact_match']:.4f}",
                f"word error rate    {metrics['word_error_rate']:.4f}",
                f"symbol error rate  {metrics['symbol_error_rate']:.4f}",
                f"cut by the cap     {metrics['capped']:.4f}",
                f"n                  {metrics['n']} sources ({metrics['references']} references)"]

    def prediction_table(self, adapter, frame, predictions, with_truth=False):
        """id, source, (references,) output and score: a row per distinct source, or per row without the truth."""
        table = pd.DataFrame({"id": adapter.index(frame)["id"], "source": frame["source"].to_numpy(),
                              "output": predictions["output"], "score": np.round(predictions["score"], 6)})
        if not with_truth:
            return table
        sources, references = adapter.references(frame)
        table = table.drop_duplicates("source").set_index("source").loc[sources].reset_index()
        table.insert(2, "references", [" | ".join(refs) for refs in references])
        table["correct"] = [output in refs for output, refs in zip(table["output"], references)]
        return table[["id", "source", "references", "output", "score", "correct"]]

    def write_test_reports(self, directory, adapter, frame, predictions, metrics):
        """The test predictions (a row per source) and the attention alignment of the first test source."""
        from ..explain import plot_alignment

        table = self.prediction_table(adapter, frame, predictions, with_truth=True)
        table.to_csv(directory / "test_predictions.csv", index=False)
        if len(frame) and adapter.attention != "none":
            plot_alignment(alignment(predictions, 0), directory / "test_alignment.png")
        return table

    def confidently_wrong(self, adapter, frame, predictions, k):
        """The ``k`` distinct sources whose output matches none of their references, highest score first."""
        sources, references = adapter.references(frame)
        first = {s: i for i, s in reversed(list(enumerate(frame["source"])))}
        rows = [first[s] for s in sources]
        wrong = [(i, refs) for i, refs in zip(rows, references) if predictions["output"][i] not in refs]
        wrong = sorted(wrong, key=lambda pair: -float(predictions["score"][pair[0]]))[:k]
        return [{**example, "references": " | ".join(refs), "output": predictions["output"][i],
                 "score": float(predictions["score"][i])}
                for (i, refs), example in zip(wrong, examples(adapter, frame, [i for i, _ in wrong]))]

    def explain(self, estimator, X, index):
        """The attention alignment of ``X[index]``'s output (:class:`~seqclf.explain.Alignment`)."""
        if estimator.adapter_.attention == "none":
            raise ConfigError("this model was trained with --attention none: it has no alignment to show; train with "
                              "--attention additive")
        frame = estimator._examples(X)
        if not 0 <= index < len(frame):
            raise ConfigError(f"row {index} is out of range: the input has {len(frame)} sources (rows count from 0)")
        return alignment(self.predictions(estimator.model_, estimator.adapter_, frame.iloc[[index]]), 0)

    def score(self, predicted, y, X):
        """Exact match of ``predicted`` strings against ``y``, a source with several rows having several references."""
        frame = pd.DataFrame({"source": list(map(str, X)), "target": list(map(str, y))})
        grouped = frame.groupby("source", sort=False)["target"].agg(set)
        first = dict(zip(map(str, X), predicted))
        return float(np.mean([first[s] in refs for s, refs in grouped.items()]))

    def answer(self, outputs, instances):
        return {key: value.tolist() for key, value in sorted(outputs.items())}

    def serves(self, outputs):
        return "output" in outputs


def alignment(predictions, row):
    """The :class:`~seqclf.explain.Alignment` of one row of :meth:`SequenceToSequence.predictions`: its real steps,
    the end symbol shown unless the cap cut the output."""
    from ..explain import Alignment

    text = lambda symbols: [s.decode("utf-8") for s in symbols if s]
    source, output = text(predictions["source_symbols"][row]), text(predictions["output_symbols"][row])
    labels = output + ([] if predictions["capped"][row] else ["</s>"])
    weights = np.asarray(predictions["attention"][row])[:len(labels), :len(source)]
    return Alignment(weights, source, labels, float(predictions["score"][row]))


def edit_distance(a, b):
    """Levenshtein distance between two sequences (insertions, deletions and substitutions cost 1).

    Examples
    --------
    >>> edit_distance("kitten", "sitting"), edit_distance(["K", "AE", "T"], ["K", "AE", "T"])
    (3, 0)
    """
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def scores(outputs, references, unit, capped=None):
    """Exact match against any reference, its complement the word error rate, and the symbol error rate: the edit
    distance to the closest reference, summed, over those references' summed length.

    Examples
    --------
    >>> s = scores(["K AE T", "D AO"], [["K AE T"], ["D AO G", "D AA G"]], "space")
    >>> s["exact_match"], round(s["symbol_error_rate"], 4)
    (0.5, 0.1667)
    """
    from ..data.pairs import symbols_of

    hits = [output in refs for output, refs in zip(outputs, references)]
    out_symbols = symbols_of(outputs, unit)
    flat = [r for refs in references for r in refs]
    ref_symbols = iter(symbols_of(flat, unit))
    edits = length = 0
    for produced, refs in zip(out_symbols, references):
        closest = min(((edit_distance(produced, r), len(r)) for r in (next(ref_symbols) for _ in refs)))
        edits, length = edits + closest[0], length + closest[1]
    exact = float(np.mean(hits)) if hits else 0.0
    return {"accuracy": exact, "exact_match": exact, "word_error_rate": 1.0 - exact,
            "symbol_error_rate": edits / max(length, 1), "capped": float(np.mean(capped)) if capped else 0.0,
            "n": len(outputs), "references": len(flat)}
