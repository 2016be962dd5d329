"""Layers from raw strings to ids, so that exported models take tokens and texts as they are.

They run TensorFlow's string operations (the export is a TensorFlow SavedModel anyway) and
are registered, so saved models load with Keras' safe mode on. Id 0 is padding, id 1 an
unknown token or character, the vocabulary starts at 2.
"""

import keras
import tensorflow as tf

PADDING = ""


@keras.saving.register_keras_serializable(package="seqclf")
class TokenLookup(keras.layers.Layer):
    """Tokens ``(n_samples, n_words)``, ``""`` for padding, to word ids and character ids.

    Words are looked up lowercased (``(n_samples, n_words)``); characters keep their case and
    the first ``max_chars`` of each word are kept (``(n_samples, n_words, max_chars)``).

    Examples
    --------
    >>> lookup = TokenLookup(words=["the", "cat"], characters=["T", "h", "e"], max_chars=4)
    >>> word_ids, char_ids = lookup(tf.constant([["The", "cat", ""]]))
    >>> word_ids.numpy().tolist(), char_ids.numpy()[0, 0].tolist()
    ([[2, 3, 0]], [2, 3, 4, 0])
    """

    def __init__(self, words, characters, max_chars=20, **kwargs):
        super().__init__(**kwargs)
        self.words, self.characters, self.max_chars = list(words), list(characters), int(max_chars)
        self.word_lookup = keras.layers.StringLookup(vocabulary=self.words, mask_token=PADDING, name="word_lookup")
        self.char_lookup = keras.layers.StringLookup(vocabulary=self.characters, mask_token=PADDING, name="char_lookup")

    def build(self, input_shape):
        pass  # the lookups hold their vocabularies from the start; nothing to build

    def call(self, tokens):
        tokens = tf.convert_to_tensor(tokens, tf.string)
        word_ids = self.word_lookup(tf.strings.lower(tokens, encoding="utf-8"))
        chars = tf.strings.unicode_split(tokens, "UTF-8")
        char_ids = chars.with_flat_values(self.char_lookup(chars.flat_values))
        shape = tf.concat([tf.shape(tokens, out_type=tf.int64), [self.max_chars]], 0)
        return word_ids, char_ids.to_tensor(0, shape=shape)

    def compute_output_spec(self, tokens):
        return (keras.KerasTensor(tokens.shape, "int64"),
                keras.KerasTensor((*tokens.shape, self.max_chars), "int64"))

    def get_config(self):
        return {**super().get_config(), "words": self.words, "characters": self.characters,
                "max_chars": self.max_chars}


@keras.saving.register_keras_serializable(package="seqclf")
class CharacterLookup(keras.layers.Layer):
    """Texts ``(n_samples,)`` to character ids ``(n_samples, longest text)``, padded with 0.

    Examples
    --------
    >>> lookup = CharacterLookup(characters=["a", "b"])
    >>> lookup(tf.constant(["ab", "b?a"])).numpy().tolist()
    [[2, 3, 0], [3, 1, 2]]
    """

    def __init__(self, characters, **kwargs):
        super().__init__(**kwargs)
        self.characters = list(characters)
        self.lookup = keras.layers.StringLookup(vocabulary=self.characters, mask_token=PADDING, name="char_lookup")

    def build(self, input_shape):
        pass  # the lookup holds its vocabulary from the start; nothing to build

    def call(self, texts):
        chars = tf.strings.unicode_split(tf.convert_to_tensor(texts, tf.string), "UTF-8")
        return chars.with_flat_values(self.lookup(chars.flat_values)).to_tensor(0)

    def compute_output_spec(self, texts):
        return keras.KerasTensor((*texts.shape, None), "int64")

    def get_config(self):
        return {**super().get_config(), "characters": self.characters}


#: How a text is cut into symbols: characters, words and punctuation marks, or whatever spaces separate.
SYMBOL_UNITS = ("char", "word", "space")
WORD = r"([\pL\pN_]+|[^\pL\pN_\s])"  # RE2: a run of letters, digits and _, or one other non-space character


def split_symbols(texts, unit):
    """Texts ``(n,)`` cut into symbols, a ``tf.RaggedTensor`` of strings ``(n, None)``.

    Examples
    --------
    >>> split_symbols(tf.constant(["Hi, you", "K AE1 T"]), "word").to_list()
    [[b'Hi', b',', b'you'], [b'K', b'AE1', b'T']]
    >>> split_symbols(tf.constant(["ab c"]), "char").to_list()
    [[b'a', b'b', b' ', b'c']]
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    if unit == "char":
        return tf.strings.unicode_split(texts, "UTF-8")
    if unit == "word":
        texts = tf.strings.regex_replace(texts, WORD, r" \1 ")
    return tf.strings.split(texts)


@keras.saving.register_keras_serializable(package="seqclf")
class SymbolLookup(keras.layers.Layer):
    """Texts ``(n_samples,)`` to symbol ids ``(n_samples, longest)``: cut into ``unit`` symbols (see
    :func:`split_symbols`), at most ``max_length`` of them kept, 0 padding, 1 a symbol outside ``symbols``.

    Examples
    --------
    >>> lookup = SymbolLookup(symbols=["K", "AE", "T"], unit="space")
    >>> lookup(tf.constant(["K AE T", "T OW"])).numpy().tolist()
    [[2, 3, 4], [4, 1, 0]]
    """

    def __init__(self, symbols, unit="char", max_length=None, **kwargs):
        super().__init__(**kwargs)
        if unit not in SYMBOL_UNITS:
            raise ValueError(f"The 'unit' parameter of SymbolLookup must be one of {', '.join(SYMBOL_UNITS)}. "
                             f"Got {unit!r} instead.")
        self.symbols, self.unit, self.max_length = list(symbols), unit, max_length
        self.lookup = keras.layers.StringLookup(vocabulary=self.symbols, mask_token=PADDING, name="symbol_lookup")

    def build(self, input_shape):
        pass  # the lookup holds its vocabulary from the start; nothing to build

    def call(self, texts):
        symbols = split_symbols(texts, self.unit)
        if self.max_length:
            symbols = symbols[:, :self.max_length]
        return symbols.with_flat_values(self.lookup(symbols.flat_values)).to_tensor(0)

    def compute_output_spec(self, texts):
        return keras.KerasTensor((*texts.shape, None), "int64")

    def get_config(self):
        return {**super().get_config(), "symbols": self.symbols, "unit": self.unit, "max_length": self.max_length}
