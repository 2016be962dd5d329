"""Builders: an architecture and explicit settings in, an uncompiled Keras model out.

Builders are pure: no I/O, no global state. The model takes encoded input (token ids or
float features) and returns class probabilities; the adapter wraps it with the preprocessing
that turns raw input into that encoding.
"""

import keras

from .. import tasks
from ..errors import ConfigError
from ..params import PARAMS
from .archs import get_architecture
from .crf import CRF
from .fcn import ConvolutionBranch, DimensionShuffle
from .kernels import RandomKernelFeatures
from .layers import (POOLING_MODES, AdditivePooling, CharacterEncoder, MissingValueMask, RightPaddedMask,
                     SequencePooling, StepAveraging)

HEADS = ("softmax", "crf")
FEATURE_EMBEDDING_DIM = 16  # per token feature column: a few dozen values (parts of speech) need few dimensions
POOLINGS = ("last",) + POOLING_MODES + ("attention",)


def build_classifier(arch, *, n_classes, units=(64,), dropout=0.0, recurrent_dropout=0.0, pooling=None,
                     task="many-to-one", vocab_size=None, embedding_dim=None, char_vocab_size=None, max_chars=None,
                     n_features=None, downsample=1, series_length=None, head="softmax", tags=None,
                     constrain_bio=False, feature_vocab_sizes=(), embedding_weights=None,
                     freeze_embeddings=False, name="classifier"):
    """Build a recurrent classifier: one label per sequence, or one per step.

    Parameters
    ----------
    arch : str
        An architecture spec such as ``bigru``, ``bilstm:128,64``, ``bi-cifg+attn`` or ``lstm:8+fcn``
        (see :mod:`seqclf.models.archs` and ``seqclf archs``); units and ``+attn`` in the spec win over
        ``units`` and ``pooling``; ``+fcn``/``+mfcn`` add a convolution branch
        (:class:`~seqclf.models.fcn.ConvolutionBranch`) read beside the recurrent layers, its vector
        (or, per step, its steps) concatenated with theirs before the output layer; ``+rocket`` adds MiniRocket's
        random kernels (:class:`~seqclf.models.kernels.RandomKernelFeatures`, adapted to the training series before
        training), read by the output layer through weights of their own that start at 0.
    n_classes : int
        Number of classes of the softmax output.
    units : sequence of int
        One recurrent layer per entry; every layer but the last returns sequences.
    dropout, recurrent_dropout : float
        Dropout on each recurrent layer's inputs and recurrent state; ``dropout`` is also
        applied before the output layer.
    pooling : {"last", "mean", "max", "attention"}, optional (``"auto"`` is resolved by the adapter before building)
        How the last layer's steps become one vector; padded steps never count. Default:
        ``"attention"`` for a spec ending in ``+attn``, else ``"last"``.
        ``"attention"`` is additive (Bahdanau) attention, :class:`~seqclf.models.layers.AdditivePooling`. Only
        ``"last"`` (ignored) applies to a per-step task.
    task : str or Task
        A registered task (:mod:`seqclf.tasks`): one softmax per sequence ``(n_samples, n_classes)``,
        or, for a per-step task (``many-to-many``, ``tag``, ...), one per step
        ``(n_samples, n_timesteps, n_classes)`` on top of layers that all return sequences.
    vocab_size, embedding_dim : int, optional
        For token input ``(n_samples, n_timesteps)``: an ``Embedding`` with ``mask_zero`` of
        ``embedding_dim`` (default: the ``embedding_dim`` parameter's, :mod:`seqclf.params`).
    embedding_weights, freeze_embeddings : array ``(vocab_size, embedding_dim)``, bool
        Pretrained vectors the embedding starts from (:mod:`seqclf.data.vectors`), kept as they are if frozen.
    char_vocab_size, max_chars : int, optional
        With token input, a second input of character ids ``(n_samples, n_timesteps, max_chars)``
        read by a :class:`~seqclf.models.layers.CharacterEncoder`, concatenated to the word embedding.
    feature_vocab_sizes : sequence of int
        With token input, one more input of ids ``(n_samples, n_timesteps)`` per entry (a token feature
        such as the part of speech; 0 padding, 1 unknown), each embedded in :data:`FEATURE_EMBEDDING_DIM`
        dimensions and concatenated to the word features.
    n_features : int, optional
        For float input ``(n_samples, n_timesteps, n_features)`` instead of tokens; NaN marks
        missing values, and steps with no value (padding) are masked.
    downsample : int
        For float input and ``task="many-to-one"``: average every ``downsample`` steps into one
        before the recurrent layers (long series train far better when shorter).
    series_length : int, optional
        For float input, a per-sequence task and a ``+fcn``/``+mfcn`` spec: the recurrent layers read
        the series through LSTM-FCN's dimension shuffle (:class:`~seqclf.models.fcn.DimensionShuffle`:
        each channel one step of its first ``series_length`` values) while the convolution branch
        reads it step by step. Without it (or per step) both read it step by step. A ``+rocket`` spec needs it:
        the longest series sets the kernels' dilations.
    head : {"softmax", "crf"}
        The output: a softmax per step (or per sequence), or, per step only, tag scores read by a
        linear-chain CRF (:class:`~seqclf.models.crf.CRF`, layer ``crf``) that learns which tag follows which;
        its output is the potentials in training, for :class:`~seqclf.models.crf.CRFLoss`.
    tags, constrain_bio : list of str, bool
        With the CRF: forbid the transitions IOB2 does not allow among the tag names ``tags``.

    Examples
    --------
    >>> model = build_classifier("bigru", n_classes=2, units=(8,), vocab_size=50, embedding_dim=4)
    >>> model.output_shape
    (None, 2)
    """
    architecture = get_architecture(arch)
    pooling = pooling or ("attention" if architecture.attention else "last")
    units = check_builder_settings(arch, units, dropout, recurrent_dropout, pooling, task)
    task = tasks.get_task(task)
    per_step = task.per_step
    if (vocab_size is None) == (n_features is None):
        raise ConfigError("build_classifier needs exactly one of vocab_size (tokens) or n_features (floats)")
    if head not in HEADS:
        raise ConfigError(f"The 'head' parameter must be one of {', '.join(HEADS)}. Got {head!r} instead.")
    if head == "crf" and not per_step:
        raise ConfigError(f"--head crf needs a label per step (--task tag or many-to-many); --task {task.name} gives "
                          f"one label per sequence")
    if n_classes < 2:
        raise ConfigError(f"The 'n_classes' parameter must be >= 2. Got {n_classes!r} instead.")

    if architecture.kernels and (n_features is None or not series_length):
        raise ConfigError(f"{arch!r}: +rocket reads float series (--kind sensor) and needs their longest length")

    if vocab_size is not None:
        inputs = keras.Input(shape=(None,), dtype="int64", name="token_ids")
        embedding = keras.layers.Embedding(vocab_size, embedding_dim or PARAMS["embedding_dim"].default, mask_zero=True,
                                           trainable=not freeze_embeddings, name="embedding")
        x = embedding(inputs)
        if embedding_weights is not None:
            embedding.set_weights([embedding_weights])
        if char_vocab_size:
            chars = keras.Input(shape=(None, max_chars), dtype="int64", name="char_ids")
            x = keras.layers.Concatenate(name="word_features")([x, CharacterEncoder(char_vocab_size, name="characters")(chars)])
            inputs = [inputs, chars]
        if feature_vocab_sizes:
            ids = [keras.Input(shape=(None,), dtype="int64", name=f"feature_ids_{k + 1}")
                   for k in range(len(feature_vocab_sizes))]
            x = keras.layers.Concatenate(name="token_features")([x] + [
                keras.layers.Embedding(size, FEATURE_EMBEDDING_DIM, mask_zero=True,  # Concatenate ORs the masks
                                       name=f"feature_embedding_{k + 1}")(feature)
                for k, (size, feature) in enumerate(zip(feature_vocab_sizes, ids))])
            inputs = (inputs if isinstance(inputs, list) else [inputs]) + ids
    else:
        inputs = keras.Input(shape=(None, n_features), name="features")
        x = inputs
        if downsample > 1:
            if per_step:
                raise ConfigError(f"--downsample does not apply to --task {task.name} (it needs a label per input step)")
            x = StepAveraging(downsample, name="step_averaging")(x)
        x = MissingValueMask(name="missing_value_mask")(x)
    features = x  # what the convolution branch reads, beside the recurrent layers
    if architecture.convolution and series_length and n_features is not None and not per_step:
        x = DimensionShuffle(series_length, name="dimension_shuffle")(inputs)
    x = RightPaddedMask(name="right_padded_mask")(x)  # a mask cuDNN can read, for a GPU
    for depth, size in enumerate(units):
        last = depth == len(units) - 1
        x = architecture.apply(x, size, return_sequences=per_step or not (last and pooling == "last"), dropout=dropout,
                               recurrent_dropout=recurrent_dropout, name=f"{architecture.name}_{depth + 1}")
    if pooling == "attention" and not per_step:
        x = AdditivePooling(units=units[-1], name="attention_pooling")(x)
    elif pooling != "last" and not per_step:
        x = SequencePooling(pooling, name=f"{pooling}_pooling")(x)
    if architecture.convolution:
        branch = ConvolutionBranch(squeeze_excite=architecture.convolution == "mfcn", per_step=per_step,
                                   name="convolution_branch")(features)
        x = keras.layers.Concatenate(name="with_convolutions")([x, branch])
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    if architecture.kernels:
        kernel_features = RandomKernelFeatures(series_length, name="kernel_features")(
            MissingValueMask(name="kernel_missing_value_mask")(inputs))  # full length: the dilations see it all
        scores = keras.layers.Add(name="scores")([
            keras.layers.Dense(n_classes, name="branch_scores")(x),
            keras.layers.Dense(n_classes, kernel_initializer="zeros", name="kernel_scores")(kernel_features)])
        outputs = keras.layers.Activation("softmax", name="probabilities")(scores)
    elif head == "crf":
        potentials = keras.layers.Dense(n_classes, name="potentials")(x)
        outputs = CRF(n_classes, tags=tags, constrain_bio=constrain_bio, name="crf")(potentials)
    else:
        outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def check_builder_settings(arch, units, dropout, recurrent_dropout, pooling, task="many-to-one"):
    """Raise :class:`ConfigError` for a setting the builder cannot use; return the units (the spec's, if it has them)."""
    architecture = get_architecture(arch)
    task = tasks.get_task(task)
    if architecture.attention and (pooling not in ("auto", "attention") or task.per_step):
        raise ConfigError(f"{arch!r} pools with attention; it does not go with "
                          f"{'--task ' + task.name if task.per_step else '--pooling ' + pooling}")
    if task.per_step and pooling not in ("last", "auto"):
        raise ConfigError(f"--pooling {pooling} does not apply to --task {task.name} (one label per step, no pooling)")
    task.check_arch(architecture)
    if architecture.kernels and task.per_step:
        raise ConfigError(f"{arch!r}: +rocket describes a whole series; --task {task.name} needs a label per step "
                          f"(use +fcn there)")
    if dropout is not None:  # None: the adapter's default, resolved before building
        _check_fraction("dropout", dropout)
    _check_fraction("recurrent_dropout", recurrent_dropout)
    if pooling not in POOLINGS + ("auto",):
        raise ConfigError(f"The 'pooling' parameter must be one of {', '.join(POOLINGS)}. Got {pooling!r} instead.")
    return _check_units(architecture.units or units)


def parse_units(text):
    """Parse ``"128,64"`` into ``(128, 64)``.

    Examples
    --------
    >>> parse_units("128,64")
    (128, 64)
    """
    try:
        return _check_units(tuple(int(part) for part in str(text).split(",")))
    except ValueError:
        raise ConfigError(f"--units must be positive integers separated by commas, like 128,64. Got {text!r} instead.") from None


def _check_units(units):
    units = tuple(units)
    if not units or any(not isinstance(u, int) or isinstance(u, bool) or u < 1 for u in units):
        raise ConfigError(f"The 'units' parameter must be one or more positive integers. Got {units!r} instead.")
    return units


def _check_fraction(name, value):
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"The '{name}' parameter must be in [0, 1). Got {value!r} instead.")
