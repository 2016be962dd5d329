"""Every parameter of a fit, declared once: name, type, default, help, and the kinds of data it applies to.

The click options of ``seqclf fit``, the parameters of :class:`seqclf.SequenceClassifier` (its
signature and docstring), the adapters' settings and :class:`seqclf.training.FitSettings` are
all read from :data:`PARAMS`. A parameter that does not apply to the kind of data at hand is
refused with the same message from the CLI and from Python (:func:`refuse_foreign`).
"""

import inspect
from dataclasses import dataclass

from .data.readers import FORMATS
from .errors import ConfigError

ALL = ()  # a parameter's ``kinds`` when it applies to every kind of data


@dataclass(frozen=True)
class Param:
    """One parameter.

    ``group`` says who reads it: ``model`` and ``training`` (:class:`~seqclf.training.FitSettings`),
    ``data`` (the kind of data and its label column), ``kind`` (an adapter's setting; ``kinds``
    lists the adapters), ``run`` (the files of a run: :class:`~seqclf.runs.DataSettings`),
    ``output`` (where ``seqclf fit`` writes), ``python`` (the estimator's own, and the CLI's).
    ``type`` is the Python type of a value (``"units"``: a tuple of ints, written ``128,64`` in the CLI).
    """

    name: str
    default: object
    help: str
    group: str
    type: object = str
    choices: tuple = ()
    kinds: tuple = ALL

    @property
    def flag(self):
        """The CLI option: the kebab-case of the name."""
        return "--" + self.name.replace("_", "-")

    def applies_to(self, kind):
        return not self.kinds or kind in self.kinds


TEXTS = ("text", "tokens", "chars", "pairs")
PARAMS = {p.name: p for p in (
    # --- the model -------------------------------------------------------------------------------
    Param("arch", None, "Architecture [bi-]CELL[:UNITS,...][+attn][+fcn|+mfcn][+rocket], e.g. bilstm:128,64, "
                        "bi-cifg+attn or lstm+mfcn; see `seqclf archs` [default: the task's: bigru, lstm+fcn+rocket "
                        "for sensor series "
                        "(one label each), lstm for next-char].", "model"),
    Param("units", (64,), "Units per recurrent layer; 128,64 stacks two.", "model", type="units"),
    Param("dropout", None, "Dropout on layer inputs and before the output [default: auto: 0.5 for text and tags, "
                           "0.1 for sensor series, stock windows and characters].", "model", type=float),
    Param("recurrent_dropout", 0.0, "Dropout on the recurrent state.", "model", type=float),
    Param("pooling", "auto", "How the steps become one vector (auto: mean for sensor series averaged down, "
                             "else last).", "model", choices=("auto", "last", "mean", "max", "attention")),
    Param("task", "many-to-one", "What to predict; `seqclf fit --help` lists the registered tasks.", "model"),
    # --- training --------------------------------------------------------------------------------
    Param("epochs", None, "Most epochs (early stopping may end sooner) [default: auto: 20, more on small data: "
                          "at least 600 updates, at most 200 epochs].", "training", type=int),
    Param("batch_size", None, "Examples per batch [default: auto: training examples / 8, between 8 and 64].",
          "training", type=int),
    Param("learning_rate", None, "Adam's learning rate [default: auto: 0.001, 0.003 for seq2seq].", "training",
          type=float),
    Param("lr_schedule", "auto", "How the learning rate moves: constant; plateau halves it after each epoch without "
                                 "a lower validation loss; cosine anneals it to 0 over all the epochs and keeps the "
                                 "last [default: auto: cosine when the validation split is too small to choose an "
                                 "epoch, else plateau for seq2seq and constant for the other tasks].", "training",
          choices=("auto", "constant", "plateau", "cosine")),
    Param("clipnorm", 1.0, "Scale the gradients down when their global norm exceeds this (against exploding "
                           "gradients).", "training", type=float),
    Param("clipvalue", None, "Clip each gradient component to [-V, V] instead of --clipnorm.", "training",
          type=float),
    Param("class_weight", "auto", "auto: balanced (rarer classes weigh more), none for tags and next-char.",
          "training", choices=("auto", "balanced", "none")),
    Param("patience", None, "Epochs without a better validation loss before stopping [default: auto: a sixth of "
                            "the epochs, at least 3].", "training", type=int),
    Param("label_smoothing", None, "Soften the training targets by this much (0 turns it off) [default: auto: "
                                   "0.1, 0 for next-char].", "training", type=float),
    Param("val_size", 0.1, "Share of the data for validation.", "training", type=float),
    Param("test_size", 0.1, "Share of the data for testing (seqclf fit).", "training", type=float),
    Param("seed", 0, "Random seed; the same seed repeats a run.", "training", type=int),
    Param("tensorboard", False, "Write TensorBoard logs (loss, accuracy, learning rate and gradient norms per "
                                "epoch): seqclf fit puts them in the run's logs/; Python in tensorboard_dir_, "
                                "copied into a saved run.", "training", type=bool),
    Param("verbose", None, "0 silent, 1 progress bar, 2 a line per epoch [default: seqclf fit: 1 on a terminal, "
                           "else 2; Python: 0].", "python", type=int),
    # --- the run (seqclf fit and seqclf.runs.fit_run) ----------------------------------------------
    Param("val", None, "Validation file [default: split off the data].", "run"),
    Param("test", None, "Test file [default: split off the data].", "run"),
    Param("format", None, "File format [default: from the suffix].", "run", choices=FORMATS),
    Param("encoding", "utf-8", "Text encoding of the file.", "run"),
    Param("walk_forward", None, "K expanding-window folds: test on each later block in turn, report each fold and "
                                "the mean.", "run", type=int, kinds=("stock",)),
    Param("out", None, "Run directory [default: runs/<date-time>-<arch>].", "output"),
    Param("name", None, "Model name in export/<name>/1 [default: the data file's stem].", "output"),
    # --- the data --------------------------------------------------------------------------------
    Param("kind", "auto", "Kind of data: auto, stock, tokens, pairs, text, sensor or chars.", "data"),
    Param("text_col", None, "Column holding the text [auto: text, sentence, review, content].", "kind",
          kinds=("text",)),
    Param("label_col", None, "Column holding the labels [auto: label, sentiment, target, class, y, activity].",
          "data", kinds=("text", "sensor", "tokens", "chars")),
    Param("tokens", "word", "Token unit of texts.", "kind", choices=("word", "char"), kinds=("text",)),
    Param("max_tokens", None, "Vocabulary size incl. padding and OOV [auto from training split; a tagger with "
                              "--embeddings: up to 100000, the file's words after the training ones].", "kind", type=int,
          kinds=("text", "tokens")),
    Param("max_length", None, "Tokens per text, longer texts are cut [text: auto: 99th percentile]; characters "
                              "per training sequence [chars: 100].", "kind", type=int, kinds=("text", "chars")),
    Param("embedding_dim", 64, "Size of the token embedding [with --embeddings: the vectors' size].", "kind",
          type=int, kinds=TEXTS),
    Param("embeddings", None, "Pretrained word vectors to start the embedding from: a word2vec (text or binary), "
                              "GloVe or fastText .vec file, gzipped or not; words it lacks start at random at its "
                              "scale.", "kind", kinds=("text", "tokens")),
    Param("freeze_embeddings", False, "Keep the pretrained vectors as they are (Kim's 'static'); by default they are "
                                      "fine-tuned.", "kind", type=bool, kinds=("text", "tokens")),
    Param("series_col", None, "Column naming each row's series [auto: series_id, series, id, recording, subject, "
                              "session].", "kind", kinds=("sensor",)),
    Param("time_col", None, "Column to order the rows of a series by [auto: time, timestamp, step, t; else file "
                            "order].", "kind", kinds=("sensor",)),
    Param("channels", None, "Channel columns, comma-separated [default: every other numeric column].", "kind",
          kinds=("sensor",)),
    Param("window", None, "[sensor] Cut each series into windows of N steps [default: a series is one sequence]; "
                          "[stock] steps of prices per window [default: 20].", "kind", type=int,
          kinds=("sensor", "stock")),
    Param("stride", None, "Steps from one window's start to the next [default: the window length].", "kind",
          type=int, kinds=("sensor",)),
    Param("window_label", "majority", "A window's label (many-to-one): its steps' majority or its last step.",
          "kind", choices=("majority", "last"), kinds=("sensor",)),
    Param("downsample", None, "Average every N steps into one inside the model (many-to-one) [auto: about 50 "
                              "steps per median training example].", "kind", type=int, kinds=("sensor",)),
    Param("date_col", None, "Column of dates [auto: Date, datetime, timestamp, time, or pandas' unnamed index].",
          "kind", kinds=("stock",)),
    Param("ticker_col", None, "Column naming the instrument of each row, for several in one table [auto: ticker, "
                              "symbol, instrument].", "kind", kinds=("stock",)),
    Param("features", None, "Features computed inside the model from the prices, comma-separated: returns, range, "
                            "gap, volume, volatility (of the last 10 returns, or half the window) [default: all the "
                            "columns allow].", "kind", kinds=("stock",)),
    Param("horizon", 1, "Label a window by the direction of the return over the next H steps.", "kind", type=int,
          kinds=("stock",)),
    Param("threshold", 0.0, "A forward return within +/- this (0.005 = 0.5%) is 'flat' (0: up/down only).", "kind",
          type=float, kinds=("stock",)),
    Param("tokens_col", None, "Column of token lists [auto: tokens, words, form, token; else the one list column].",
          "kind", kinds=("tokens",)),
    Param("tag_col", None, "Column of tag lists [auto: upos, tags, tag, ner_tags, pos_tags, ner, pos, labels].",
          "kind", kinds=("tokens",)),
    Param("token_features", None, "Further per-token columns the model reads, comma-separated: a CoNLL file's "
                                  "column_2 (CoNLL-2000's POS tags), CoNLL-U's upos, xpos, feats or lemma, a table's "
                                  "list columns by name; each value embedded beside the word (the export then takes "
                                  "them as further inputs).", "kind", kinds=("tokens",)),
    Param("char_encoder", "on", "Read each word's characters too, so unseen words get features from their "
                                "spelling.", "kind", choices=("on", "off"), kinds=("tokens",)),
    Param("head", "softmax", "The output per token: a softmax, or a linear-chain CRF that also learns which tag "
                             "follows which (trained on the sentence's likelihood, decoded with Viterbi).", "kind",
          choices=("softmax", "crf"), kinds=("tokens",)),
    Param("constrain_bio", False, "With --head crf and IOB2 tags: forbid transitions IOB2 does not allow (I-X only "
                                  "after B-X or I-X).", "kind", type=bool, kinds=("tokens",)),
    Param("source_col", None, "Column holding the source texts [auto: source, input, src; a two-column file with "
                              "neither name: the first column, no header].", "kind", kinds=("pairs",)),
    Param("target_col", None, "Column holding the target texts [auto: target, output, tgt; else the second "
                              "column].", "kind", kinds=("pairs",)),
    Param("source_tokens", "char", "Symbols of the source: characters, words (and punctuation marks), or "
                                   "whatever spaces separate.", "kind", choices=("char", "word", "space"),
          kinds=("pairs",)),
    Param("target_tokens", "char", "Symbols of the target, as --source-tokens (space: phones such as K AE T).",
          "kind", choices=("char", "word", "space"), kinds=("pairs",)),
    Param("max_source_length", None, "Source symbols read, longer sources are cut [auto: 99th percentile of the "
                                     "training sources].", "kind", type=int, kinds=("pairs",)),
    Param("max_target_length", None, "Most output symbols; longer training targets are left out [auto: 99th "
                                     "percentile of the training targets].", "kind", type=int, kinds=("pairs",)),
    Param("decoder", "gru", "The decoder's cell and units, gru or lstm[:UNITS] [units: the encoder's state "
                            "width].", "kind", kinds=("pairs",)),
    Param("attention", "additive", "The decoder's attention over the source: additive (Bahdanau) or none (one "
                                   "fixed context: the plain encoder-decoder).", "kind", choices=("additive", "none"),
          kinds=("pairs",)),
    Param("beam_size", 4, "Hypotheses kept while decoding (1: greedy); scores are per symbol.", "kind", type=int,
          kinds=("pairs",)),
    Param("strategy", "auto", "tf.distribute strategy: multi-worker trains on the cluster in TF_CONFIG (run the "
                              "same command on every worker), mirrored on the local GPUs; auto picks multi-worker "
                              "when TF_CONFIG names a cluster, mirrored with 2+ GPUs, else default.", "training",
          choices=("auto", "default", "mirrored", "multi-worker")),
)}

#: The estimator's parameters, in their signature's order.
ESTIMATOR = tuple(name for name, p in PARAMS.items() if p.group in ("model", "training", "python", "data", "kind")
                  and name != "test_size")
#: The fields of :class:`~seqclf.training.FitSettings`.
SETTINGS = tuple(name for name, p in PARAMS.items() if p.group in ("model", "training"))
#: The fields of :class:`~seqclf.runs.DataSettings` after ``data`` (the kind's settings go to its ``options``).
DATA_SETTINGS = ("kind", "val", "test", "format", "encoding", "label_col", "walk_forward")


def kind_options(kind):
    """The names of the ``kind`` parameters an adapter of ``kind`` takes."""
    return tuple(name for name, p in PARAMS.items() if p.group == "kind" and p.applies_to(kind))


def signature(names, overrides=None):
    """An ``__init__`` signature of keyword parameters ``names`` with their declared defaults (or ``overrides``)."""
    overrides = overrides or {}
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Signature([self] + [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                         default=overrides.get(name, PARAMS[name].default))
                                       for name in names])


def docs(names):
    """A numpydoc ``Parameters`` section for ``names``."""
    lines = []
    for name in names:
        p = PARAMS[name]
        kinds = f" ({', '.join(p.kinds)} data)" if p.kinds else ""
        lines += [f"{name} : default {p.default!r}{kinds}", f"    {p.help}"]
    return "\n".join(lines)


def is_default(name, value):
    """Whether ``value`` is the declared default of the parameter ``name``."""
    return _same(value, PARAMS[name].default)


def refuse_foreign(values, kind):
    """Raise :class:`ConfigError` naming the first of ``values`` (``{name: value}``: the settings the user gave) that
    does not apply to ``kind`` data."""
    for name, value in values.items():
        p = PARAMS.get(name)
        if p is None or p.applies_to(kind):
            continue
        raise ConfigError(f"{p.flag} ({name}={value!r}) does not apply to {kind} data; it applies to "
                          f"{', '.join(p.kinds)} data: leave it out")


def _same(value, default):
    try:
        return value is default or bool(value == default)
    except (TypeError, ValueError):  # arrays compare elementwise
        return False
