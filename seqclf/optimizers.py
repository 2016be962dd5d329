"""The optimizer seqclf trains with: Adam that updates only the embedding rows a batch uses.

An ``Embedding``'s gradient is sparse (``tf.IndexedSlices``: the rows of the words in the
batch). Keras' Adam and its gradient clipping turn it into a dense tensor of the whole
vocabulary, then read and write every row's moments at every step: for the default text model
(20,000 x 128) that is most of the work of a batch of short sentences. :class:`LazyAdam` keeps
the gradient sparse: clipping scales the rows it has, and the update reads and writes only them
("lazy" Adam, as in TensorFlow Addons' ``LazyAdam``). The difference from dense Adam: a row the
batch does not use keeps its moments and does not move, where dense Adam would keep moving it by
the decaying momentum of earlier batches. Every other variable gets Keras' dense Adam.
"""

import keras
import tensorflow as tf


def merge_duplicates(gradient):
    """``gradient`` with each row once (duplicate rows summed), if it is ``tf.IndexedSlices``; else unchanged."""
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    rows, position = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, gradient.dense_shape)


def scale(gradient, factor):
    """``gradient * factor``, sparse if it is."""
    if isinstance(gradient, tf.IndexedSlices):
        return tf.IndexedSlices(gradient.values * tf.cast(factor, gradient.values.dtype), gradient.indices,
                                gradient.dense_shape)
    return gradient * tf.cast(factor, gradient.dtype)


def clip_gradients(grads, clipnorm=None, clipvalue=None):
    """Keras' ``global_clipnorm`` (all gradients scaled together when their global norm exceeds
    ``clipnorm``) or ``clipvalue`` (each component into [-clipvalue, clipvalue]), with the same
    results as Keras', keeping sparse gradients sparse. ``None`` entries stay ``None``."""
    grads = [merge_duplicates(g) for g in grads]
    dense = [None if g is None else g.values if isinstance(g, tf.IndexedSlices) else g for g in grads]
    if clipvalue:
        clipped = [None if d is None else tf.clip_by_value(d, -clipvalue, clipvalue) for d in dense]
        return [tf.IndexedSlices(c, g.indices, g.dense_shape) if isinstance(g, tf.IndexedSlices) else c
                for g, c in zip(grads, clipped)]
    if not clipnorm:
        return grads
    norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(d)) for d in dense if d is not None]))
    factor = clipnorm * tf.minimum(1.0 / norm, 1.0 / clipnorm)  # as Keras: NaN and inf norms pass NaN on
    return [None if g is None else scale(g, factor) for g in grads]


NORM_BUFFER = 8192  # steps whose gradient norms LazyAdam keeps (an epoch's last ones if it has more)


def global_norm(grads):
    """The norm of all gradients together, sqrt(sum of squares), as of their dense form (sparse rows merged)."""
    dense = [g.values if isinstance(g, tf.IndexedSlices) else g for g in map(merge_duplicates, grads) if g is not None]
    return tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(tf.cast(d, "float32"))) for d in dense]))


def clipping_fires(grads, norm, clipnorm=None, clipvalue=None):
    """Whether clipping changes ``grads`` (global ``norm`` above ``clipnorm``, or a component beyond ``clipvalue``)."""
    if clipvalue:
        dense = [g.values if isinstance(g, tf.IndexedSlices) else g for g in map(merge_duplicates, grads) if g is not None]
        return tf.reduce_any([tf.reduce_max(tf.abs(d)) > clipvalue for d in dense])
    return norm > clipnorm if clipnorm else tf.constant(False)


@keras.saving.register_keras_serializable(package="seqclf")
class LazyAdam(keras.optimizers.Adam):
    """Adam whose update of a sparse gradient reads and writes only that gradient's rows.

    ``global_clipnorm`` and ``clipvalue`` keep sparse gradients sparse
    (:func:`clip_gradients`); dense gradients get Keras' Adam unchanged. With ``record_gradients``, step
    k writes the global gradient norm before clipping at ``gradient_norms[k % NORM_BUFFER]`` and whether
    clipping changed the gradients (1 or 0) at ``clipped[k % NORM_BUFFER]``, inside the training step, so
    :class:`~seqclf.training.callbacks.GradientNorms` reads them once an epoch, not once a batch (a read
    per batch waits for each step to finish: the quick start trained in 18.4 s instead of 16.9).

    Examples
    --------
    >>> model.compile(optimizer=LazyAdam(learning_rate=1e-3, global_clipnorm=1.0), loss=...)  # doctest: +SKIP
    """

    def __init__(self, *args, record_gradients=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.record_gradients = record_gradients

    def build(self, var_list):
        if self.built:  # as Keras' Adam: a second build (a backup's restore) keeps the variables
            return
        super().build(var_list)
        if self.record_gradients:
            # plain TensorFlow variables, not the optimizer's own: a diagnostic, not state that model.keras saves
            # (a saved run then loads whatever the buffer's size, and runs written before it load too)
            self.gradient_norms = tf.Variable(tf.zeros(NORM_BUFFER), trainable=False, name="gradient_norms")
            self.clipped = tf.Variable(tf.zeros(NORM_BUFFER), trainable=False, name="clipped")

    def get_config(self):
        return {**super().get_config(), "record_gradients": self.record_gradients}

    def _clip_gradients(self, grads):
        if self.record_gradients:  # before clipping: what backpropagation gave (GradientNorms reads it per batch)
            norm = global_norm(grads)
            slot = [[self.iterations % NORM_BUFFER]]  # the step's number: iterations counts after the update
            fired = tf.cast(clipping_fires(grads, norm, self.global_clipnorm, self.clipvalue), "float32")
            self.gradient_norms.assign(tf.tensor_scatter_nd_update(self.gradient_norms, slot, [norm]))
            self.clipped.assign(tf.tensor_scatter_nd_update(self.clipped, slot, [fired]))
        if self.clipnorm:  # a norm per variable: Keras' own
            return super()._clip_gradients(grads)
        return clip_gradients(grads, self.global_clipnorm, self.clipvalue)  # also merges duplicate rows

    def update_step(self, gradient, variable, learning_rate):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        if self._distribution_strategy.num_replicas_in_sync > 1:  # the all-reduce after clipping joins their rows
            gradient = merge_duplicates(gradient)
        rows, values = gradient.indices, tf.cast(gradient.values, variable.dtype)
        step = tf.cast(self.iterations + 1, variable.dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, variable.dtype), tf.cast(self.beta_2, variable.dtype)
        alpha = tf.cast(learning_rate, variable.dtype) * tf.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        m_rows = beta_1 * tf.gather(m.value, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v.value, rows) + (1 - beta_2) * tf.square(values)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign_sub(variable, tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))
