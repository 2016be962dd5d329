"""The encoder-decoder for outputs of another length: additive attention, a decoder, greedy and beam search.

The encoder is any recurrent spec (``bigru``, ``lstm:128,64``, ...) returning its states
h_1..h_S; the decoder (Bahdanau, Cho and Bengio 2015) computes, for every output step i,

    e_ij = v^T tanh(W s_{i-1} + U h_j),  alpha_ij = softmax_j(e_ij),  c_i = sum_j alpha_ij h_j,
    s_i = f(s_{i-1}, [E y_{i-1}; c_i]),  p(y_i | ...) = softmax(D [s_i; c_i] + d)

with f a GRU or LSTM cell and padded source steps left out of the softmax. Without attention
(``attention="none"``, the plain encoder-decoder of Cho et al. 2014) the context is the same at
every step: the mean of the encoder's states. Training feeds the true previous symbol (teacher
forcing); :func:`beam_search` feeds the model's own, inside the exported graph.

Target ids: 0 padding, 1 an unknown symbol, 2 start, 3 end, the symbols from 4.
"""

import keras
import tensorflow as tf
from keras import ops

from ..errors import ConfigError
from .archs import get_architecture
from .layers import RightPaddedMask

PAD, UNKNOWN, START, END = 0, 1, 2, 3
SPECIALS = ("", "<unk>", "<s>", "</s>")
DECODER_CELLS = {"gru": keras.layers.GRUCell, "lstm": keras.layers.LSTMCell}
ATTENTIONS = ("additive", "none")


@keras.saving.register_keras_serializable(package="seqclf")
class AdditiveAttention(keras.layers.Layer):
    """Bahdanau's additive attention of a query ``s`` (the decoder state) over ``values`` ``h_1..h_S``.

    ``call(query, values, mask)`` returns the context ``sum_j alpha_j h_j`` ``(n, features)`` and the weights
    ``alpha`` ``(n, S)``; masked steps get weight 0. :meth:`keys` is ``U h_j``, to compute once per source.

    Examples
    --------
    >>> import numpy as np
    >>> layer = AdditiveAttention(units=4)
    >>> values = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    >>> context, weights = layer(np.ones((2, 6), "float32"), values, mask=np.arange(5) < np.array([[5], [2]]))
    >>> tuple(context.shape), np.round(weights.numpy().sum(axis=1), 5).tolist(), float(weights[1, 2:].numpy().max())
    ((2, 3), [1.0, 1.0], 0.0)
    """

    def __init__(self, units=64, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"The 'units' parameter of AdditiveAttention must be an integer >= 1. Got {units!r} "
                             f"instead.")
        self.units = units
        self.supports_masking = True  # the mask is the ``mask`` argument; none is passed on

    def compute_mask(self, *args, **kwargs):
        return None

    def build(self, query_shape, values_shape=None, mask_shape=None):
        values_shape = values_shape or query_shape
        self.query_kernel = self.add_weight(name="query_kernel", shape=(query_shape[-1], self.units),
                                            initializer="glorot_uniform")  # W
        self.value_kernel = self.add_weight(name="value_kernel", shape=(values_shape[-1], self.units),
                                            initializer="glorot_uniform")  # U
        self.score = self.add_weight(name="score", shape=(self.units,), initializer="glorot_uniform")  # v

    def keys(self, values):
        """``U h_j`` for every source step: ``(n, S, units)``."""
        return ops.matmul(values, self.value_kernel)

    def call(self, query, values, mask=None, keys=None):
        keys = self.keys(values) if keys is None else keys
        energy = ops.sum(ops.tanh(keys + ops.expand_dims(ops.matmul(query, self.query_kernel), 1)) * self.score, -1)
        if mask is not None:
            energy = ops.where(mask, energy, ops.full_like(energy, -1e9))
        weights = ops.softmax(energy, axis=-1)
        if mask is not None:
            weights = weights * ops.cast(mask, weights.dtype)
        return ops.sum(values * ops.expand_dims(weights, -1), axis=1), weights

    def compute_output_spec(self, query, values, mask=None, keys=None):
        return (keras.KerasTensor((query.shape[0], values.shape[-1]), values.dtype),
                keras.KerasTensor(values.shape[:2], values.dtype))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="seqclf")
class AttentionDecoder(keras.layers.Layer):
    """The decoder: previous symbols ``(n, T)`` (start symbol first), encoder states ``(n, S, features)`` and source
    ids ``(n, S)`` (0: padding) in; the distribution of each next symbol ``(n, T, vocab_size)`` out (teacher forcing).

    :meth:`start` and :meth:`step` run it one symbol at a time, as :func:`beam_search` does.
    """

    def __init__(self, vocab_size, units=128, cell="gru", attention="additive", embedding_dim=64, dropout=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if cell not in DECODER_CELLS:
            raise ConfigError(f"The decoder cell must be one of {', '.join(DECODER_CELLS)}. Got {cell!r} instead.")
        if attention not in ATTENTIONS:
            raise ConfigError(f"The 'attention' parameter must be one of {', '.join(ATTENTIONS)}. Got {attention!r} "
                              f"instead.")
        self.vocab_size, self.units, self.cell_name, self.attention_name = int(vocab_size), int(units), cell, attention
        self.embedding_dim, self.dropout = int(embedding_dim), float(dropout)
        self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_dim, name="target_embedding")
        self.cell = DECODER_CELLS[cell](self.units, name=f"{cell}_cell")
        self.attention = AdditiveAttention(self.units, name="attention") if attention == "additive" else None
        self.initial = keras.layers.Dense(self.units, activation="tanh", name="initial_state")
        self.output_dropout = keras.layers.Dropout(self.dropout, name="output_dropout")
        self.output_layer = keras.layers.Dense(self.vocab_size, activation="softmax", name="next_symbol")

    def build(self, previous_shape, states_shape=None, source_shape=None):
        features = states_shape[-1]
        self.embedding.build(previous_shape)
        self.cell.build((None, self.embedding_dim + features))
        if self.attention is not None:
            self.attention.build((None, self.units), states_shape)
        self.initial.build((None, features))
        self.output_layer.build((None, self.units + features))

    def start(self, states, mask):
        """What every output step needs from the source: ``(recurrent state, keys, fixed context)``.

        The first state is ``tanh(W_0 mean_j h_j)``; without attention the mean is also the context.
        """
        real = ops.cast(ops.expand_dims(mask, -1), states.dtype)
        mean = ops.sum(states * real, axis=1) / ops.maximum(ops.sum(real, axis=1), 1.0)
        first = self.initial(mean)
        state = [first] if self.cell_name == "gru" else [first, ops.zeros_like(first)]
        keys = self.attention.keys(states) if self.attention is not None else None
        return state, keys, mean

    def step(self, previous, state, states, mask, keys, fixed, training=False):
        """One output step: ``(probabilities (n, vocab), new state, attention weights (n, S))``."""
        if self.attention is not None:
            context, weights = self.attention(state[0], states, mask=mask, keys=keys)
        else:
            context, weights = fixed, ops.zeros(ops.shape(mask), states.dtype)
        output, state = self.cell(ops.concatenate([self.embedding(previous), context], -1), state, training=training)
        state = list(state) if isinstance(state, (list, tuple)) else [state]
        hidden = self.output_dropout(ops.concatenate([output, context], -1), training=training)
        return self.output_layer(hidden), state, weights

    def call(self, previous, states, source, training=False):
        mask = ops.not_equal(source, 0)
        state, keys, fixed = self.start(states, mask)

        def one_step(carry, symbols):
            probabilities, state, _ = self.step(symbols, list(carry[0]), states, mask, keys, fixed, training)
            return tuple(state), probabilities

        empty = tf.zeros([tf.shape(previous)[0], self.vocab_size], states.dtype)
        _, probabilities = tf.scan(one_step, tf.transpose(previous), initializer=(tuple(state), empty))
        return tf.transpose(probabilities, (1, 0, 2))

    def compute_output_spec(self, previous, states, source, training=False):
        return keras.KerasTensor((*previous.shape, self.vocab_size), states.dtype)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "units": self.units, "cell": self.cell_name,
                "attention": self.attention_name, "embedding_dim": self.embedding_dim, "dropout": self.dropout}


def parse_decoder(spec):
    """``"gru:128"`` -> ``("gru", 128)``; ``"lstm"`` -> ``("lstm", None)`` (units: the encoder's state width).

    Examples
    --------
    >>> parse_decoder("lstm:256"), parse_decoder("gru")
    (('lstm', 256), ('gru', None))
    """
    cell, _, units = str(spec).partition(":")
    if cell not in DECODER_CELLS or (units and not (units.isdigit() and int(units) > 0)):
        raise ConfigError(f"--decoder must be CELL[:UNITS] with CELL one of {', '.join(DECODER_CELLS)}, like gru:128. "
                          f"Got {spec!r} instead.")
    return cell, int(units) if units else None


def check_encoder(architecture):
    """``architecture`` if it can encode a source (recurrent layers only); else :class:`ConfigError`."""
    if architecture.attention or architecture.convolution or architecture.kernels:
        raise ConfigError(f"{architecture.spec!r}: the encoder of a sequence-to-sequence model is recurrent layers "
                          f"only (the decoder's attention is --attention); leave out +attn, +fcn, +mfcn and +rocket")
    return architecture


def build_seq2seq(arch, *, source_vocab_size, target_vocab_size, units=(64,), embedding_dim=64, decoder="gru",
                  attention="additive", dropout=0.0, recurrent_dropout=0.0, name="seq2seq"):
    """Build the encoder-decoder: ``[source ids (n, S), previous symbols (n, T)]`` in, next-symbol
    probabilities ``(n, T, target_vocab_size)`` out.

    Parameters
    ----------
    arch : str
        The encoder: a recurrent spec such as ``bigru`` or ``lstm:128,64`` (no ``+attn`` or ``+fcn``).
    decoder : str
        ``CELL[:UNITS]``, ``gru`` or ``lstm``; units default to the width of the encoder's states.
    attention : {"additive", "none"}
        Bahdanau's attention, or one fixed context (the mean of the encoder's states).

    Examples
    --------
    >>> model = build_seq2seq("bigru", source_vocab_size=30, target_vocab_size=12, units=(8,))
    >>> model.output_shape
    (None, None, 12)
    """
    architecture = check_encoder(get_architecture(arch))
    units = architecture.units or tuple(units)
    cell, decoder_units = parse_decoder(decoder)
    source = keras.Input(shape=(None,), dtype="int64", name="source_ids")
    x = keras.layers.Embedding(source_vocab_size, embedding_dim, mask_zero=True, name="source_embedding")(source)
    x = RightPaddedMask(name="right_padded_mask")(x)  # an empty source reads one step: cuDNN needs one, on a GPU
    for depth, size in enumerate(units):
        x = architecture.apply(x, size, return_sequences=True, dropout=dropout, recurrent_dropout=recurrent_dropout,
                               name=f"{architecture.name}_{depth + 1}")
    encoder = keras.Model(source, x, name="encoder")
    previous = keras.Input(shape=(None,), dtype="int64", name="previous_symbols")
    source_in = keras.Input(shape=(None,), dtype="int64", name="source_ids")
    layer = AttentionDecoder(target_vocab_size, units=decoder_units or int(encoder.output_shape[-1]), cell=cell,
                             attention=attention, embedding_dim=embedding_dim, dropout=dropout, name="decoder")
    outputs = layer(previous, encoder(source_in), source_in)
    return keras.Model([source_in, previous], outputs, name=name)


def parts(model):
    """The encoder model and decoder layer of a model from :func:`build_seq2seq` (or one wrapping it)."""
    core = model if any(layer.name == "decoder" for layer in model.layers) else next(
        layer for layer in model.layers if isinstance(layer, keras.Model))
    return core.get_layer("encoder"), core.get_layer("decoder")


def beam_search(encoder, decoder, source, beam_size, max_length):
    """Decode a batch of source ids ``(n, S)`` with a beam of ``beam_size`` (1: greedy), at most ``max_length``
    symbols (the end symbol included).

    Each hypothesis' score is its log-probability; the one returned has the best score per symbol
    (length-normalised, the end symbol counted). Returns a dict of ``symbols`` ``(n, max_length)`` (target ids),
    ``length`` (symbols before the end), ``score`` (mean log-probability per symbol), ``capped`` (no end symbol
    within ``max_length``) and ``attention`` ``(n, max_length, S)``.
    """
    source = tf.convert_to_tensor(source, tf.int64)
    batch, width, k = tf.shape(source)[0], tf.shape(source)[1], int(beam_size)
    vocab = decoder.vocab_size
    repeat = lambda t: tf.repeat(t, k, axis=0)  # hypotheses of one source next to each other
    states = repeat(encoder(source, training=False))
    mask = repeat(tf.not_equal(source, 0))
    state, keys, fixed = decoder.start(states, mask)
    scores = tf.tile(tf.constant([[0.0] + [-1e9] * (k - 1)]), [batch, 1])  # only the first hypothesis at first
    symbols = tf.zeros([batch, k, max_length], tf.int64)
    attention = tf.zeros([batch, k, max_length, width])
    finished = tf.zeros([batch, k], tf.bool)
    lengths = tf.zeros([batch, k], tf.int32)
    previous = tf.fill([batch * k], tf.constant(START, tf.int64))
    only_end = tf.one_hot(END, vocab, on_value=0.0, off_value=-1e9)

    def body(t, previous, state, scores, symbols, attention, finished, lengths):
        entering = [previous, *state, scores, symbols, attention, finished, lengths]
        probabilities, state, weights = decoder.step(previous, state, states, mask, keys, fixed)
        log_p = tf.reshape(tf.math.log(probabilities + 1e-12), [batch, k, vocab])
        log_p = tf.where(finished[..., None], only_end, log_p)  # a finished hypothesis stays as it is
        scores, best = tf.math.top_k(tf.reshape(scores[..., None] + log_p, [batch, k * vocab]), k)
        origin, symbol = best // vocab, tf.cast(best % vocab, tf.int64)
        keep = lambda t: tf.gather(t, origin, batch_dims=1)
        state = [tf.reshape(keep(tf.reshape(s, [batch, k, -1])), [batch * k, -1]) for s in state]
        at_t = tf.one_hot(t, max_length, dtype=tf.int64)
        symbols = keep(symbols) * (1 - at_t) + symbol[..., None] * at_t
        attention = keep(attention) + tf.reshape(keep(tf.reshape(weights, [batch, k, -1])),
                                                 [batch, k, 1, width]) * tf.cast(at_t, tf.float32)[:, None]
        was_finished = keep(finished)
        lengths = keep(lengths) + tf.cast(~was_finished, tf.int32)
        finished = was_finished | tf.equal(symbol, END)
        previous = tf.reshape(symbol, [-1])
        for new, old in zip([previous, *state, scores, symbols, attention, finished, lengths], entering):
            new.set_shape(old.shape)  # as it entered the loop: reshaping by the batch's size lost its static shape
        return t + 1, previous, state, scores, symbols, attention, finished, lengths

    go_on = lambda t, previous, state, scores, symbols, attention, finished, lengths: (
        t < max_length) & ~tf.reduce_all(finished)
    _, _, _, scores, symbols, attention, finished, lengths = tf.while_loop(
        go_on, body, [tf.constant(0), previous, state, scores, symbols, attention, finished, lengths])
    normalised = scores / tf.cast(tf.maximum(lengths, 1), tf.float32)
    best = tf.argmax(normalised, axis=1, output_type=tf.int32)
    pick = lambda t: tf.gather(t, best, batch_dims=1)
    finished = pick(finished)
    return {"symbols": pick(symbols), "length": pick(lengths) - tf.cast(finished, tf.int32),
            "score": pick(normalised), "capped": ~finished, "attention": pick(attention)}


class Translator:
    """Raw source strings in, decoded strings out, with the lookup, encoder and decoder of a fitted model
    (the adapter's :meth:`~seqclf.data.pairs.PairsAdapter.wrap` of :func:`build_seq2seq`'s model).

    ``translator(texts)`` (graph-safe: the export calls it) returns ``output`` (strings), ``score`` (mean
    log-probability per symbol), ``capped``, ``attention`` ``(n, output steps, source steps)`` and the
    ``source_symbols`` and ``output_symbols`` it aligns (``""`` as padding).
    """

    def __init__(self, model, target_symbols, separator, beam_size, max_length):
        if not isinstance(beam_size, int) or beam_size < 1:
            raise ConfigError(f"The 'beam_size' parameter must be an integer >= 1. Got {beam_size!r} instead.")
        self.lookup = model.get_layer("source_lookup")
        self.encoder, self.decoder = parts(model)
        self.vocabulary = tf.constant(list(target_symbols))
        self.separator, self.beam_size, self.max_length = separator, beam_size, int(max_length) + 1  # + the end

    def __call__(self, texts, beam_size=None):
        from .string_layers import split_symbols

        source = self.lookup(texts)
        found = beam_search(self.encoder, self.decoder, source, beam_size or self.beam_size, self.max_length)
        symbols = tf.RaggedTensor.from_tensor(tf.gather(self.vocabulary, found["symbols"]), lengths=found["length"])
        width = tf.shape(source)[1]
        source_symbols = split_symbols(texts, self.lookup.unit)[:, :width].to_tensor("", shape=tf.shape(source))
        return {"output": tf.strings.reduce_join(symbols, axis=1, separator=self.separator), "score": found["score"],
                "capped": found["capped"], "attention": found["attention"], "source_symbols": source_symbols,
                "output_symbols": symbols.to_tensor("", shape=tf.shape(found["symbols"]))}
