"""Tagging tokens (``--task tag``): a tag per token of a sentence (part of speech, entities, chunks).

The per-step task on token lists, with what taggers are judged by: entity-level precision,
recall and F1 for BIO-style tag sets (seqeval, CoNLL's measure), and a tag of a held-out file
that training never saw scored as it is in the standard evaluation: the model cannot give it,
so every such token counts as an error (with a warning naming and counting the tags).
"""

import logging

from .per_step import PerStep

log = logging.getLogger(__name__)
UNSEEN = -2  # a held-out tag that training never saw: scored, always wrong
ENTITY_PREFIXES = ("B-", "I-", "E-", "S-", "L-", "U-")


class Tag(PerStep):
    """A tag for each token of a sentence."""

    name = "tag"
    description = "a tag per token (CoNLL-U, CoNLL columns, token-list tables; --kind tokens)"
    kinds = ("tokens",)
    defaults = {"class_weight": "none"}  # token accuracy is the goal

    def read_format(self, path, format):
        """A ``.txt`` of whitespace columns with blank lines between sentences is read as CoNLL columns."""
        from ..data.conll import sniff_conll
        from ..data.readers import detect_format

        if format is None and str(path) != "-" and detect_format(path) == "lines" and sniff_conll(path):
            log.info("%s: reading whitespace columns with blank lines between sentences as CoNLL (--format conll)",
                     path)
            return "conll"
        return format

    def check_held_out(self, adapter, known, held_out):
        """Tags outside ``known`` are warned about, named and counted (they will count as errors), never refused."""
        for source, frame in held_out.items():
            tags = adapter.label_strings(frame)
            unseen = tags[~tags.isin(set(known))]
            if len(unseen):
                counts = unseen.value_counts()
                log.warning("%s: %d token(s) carry tags the training data lacks (%s); the model cannot give them, "
                            "so they count as errors", source, len(unseen),
                            ", ".join(f"{tag!r} x{n}" for tag, n in counts.head(5).items()))

    def targets(self, adapter, frame, source):
        """For training and early stopping: tokens with an unseen tag are left out of the loss (and, under
        ``--constrain-bio``, sentences that break IOB2)."""
        return adapter.blank_iob2_breaks(frame, adapter.targets(frame, source, unseen=-1))

    def step_targets(self, adapter, frame, source):
        return adapter.targets(frame, source, unseen=UNSEEN)

    def extra_metrics(self, adapter, frame, probabilities):
        """Entity-level precision, recall and F1 (seqeval) when the tags are BIO, IOB, IOBES or BILOU."""
        if not all(c == "O" or c.startswith(ENTITY_PREFIXES) for c in adapter.classes_):
            return {}
        return {"entities": entity_scores(list(frame[adapter.label_col]), adapter.predicted_tags(frame, probabilities))}

    def explain(self, estimator, X, index):
        """Each token's tag and probabilities (a CRF's marginals beside its Viterbi path): :func:`seqclf.explain.
        explain_tags`."""
        from ..explain import explain_tags

        return explain_tags(estimator, X, index)

    def report_lines(self, metrics):
        if "entities" not in metrics:
            return []
        entities = metrics["entities"]
        return [f"entities  precision {entities['precision']:.4f}  recall {entities['recall']:.4f}  "
                f"f1 {entities['f1']:.4f}  ({entities['support']} spans, {entities['scheme']})"]


def entity_scores(true_tags, predicted_tags):
    """Entity-level scores with seqeval: spans must match in type and both ends (CoNLL's measure).

    The scheme is read from the tags: BILOU (``L-``/``U-``), IOBES (``E-``/``S-``), else IOB2/IOB1
    in seqeval's default, conlleval-compatible mode.

    Examples
    --------
    >>> scores = entity_scores([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "O"]])
    >>> scores["precision"], scores["recall"], round(scores["f1"], 3)
    (1.0, 0.5, 0.667)
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import BILOU, IOBES

    prefixes = {tag[:2] for tags in true_tags for tag in tags}
    scheme = BILOU if prefixes & {"L-", "U-"} else IOBES if prefixes & {"E-", "S-"} else None
    options = {"mode": "strict", "scheme": scheme} if scheme else {}
    report = classification_report(true_tags, predicted_tags, output_dict=True, zero_division=0, **options)
    micro = report.pop("micro avg")
    for name in ("macro avg", "weighted avg"):
        report.pop(name, None)
    return {"precision": float(micro["precision"]), "recall": float(micro["recall"]), "f1": float(micro["f1-score"]),
            "support": int(micro["support"]), "scheme": scheme.__name__ if scheme else "IOB",
            "per_type": {name: {"precision": float(s["precision"]), "recall": float(s["recall"]),
                                "f1": float(s["f1-score"]), "support": int(s["support"])} for name, s in report.items()}}
