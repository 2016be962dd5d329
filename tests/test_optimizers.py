"""LazyAdam and sparse-preserving clipping against Keras' own Adam and clipping."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seqclf.optimizers import LazyAdam, clip_gradients, merge_duplicates

ROWS, WIDTH = 10, 3


def sparse(rows, values):
    return tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(rows, tf.int64), tf.constant([ROWS, WIDTH], tf.int64))


def test_merge_duplicates_sums_repeated_rows():
    merged = merge_duplicates(sparse([4, 1, 4], [[1, 1, 1], [2, 2, 2], [3, 3, 3]]))
    assert sorted(merged.indices.numpy().tolist()) == [1, 4]
    np.testing.assert_allclose(tf.convert_to_tensor(merged).numpy()[4], [4, 4, 4])
    np.testing.assert_allclose(tf.convert_to_tensor(merged).numpy()[1], [2, 2, 2])


@pytest.mark.parametrize("settings", [{"global_clipnorm": 0.5}, {"global_clipnorm": 100.0}, {"clipvalue": 1.5}])
def test_clipping_equals_keras_and_stays_sparse(settings):
    rng = np.random.default_rng(0)
    embedding = sparse([2, 7, 2, 0], rng.normal(size=(4, WIDTH)))  # row 2 twice: the dense gradient sums them
    kernel = tf.constant(rng.normal(size=(WIDTH, 2)), tf.float32)
    ours = clip_gradients([embedding, kernel, None], settings.get("global_clipnorm"), settings.get("clipvalue"))
    theirs = keras.optimizers.Adam(**settings)._clip_gradients([tf.convert_to_tensor(embedding), kernel])
    assert isinstance(ours[0], tf.IndexedSlices) and ours[2] is None
    np.testing.assert_allclose(tf.convert_to_tensor(ours[0]).numpy(), theirs[0].numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours[1].numpy(), theirs[1].numpy(), rtol=1e-6)


def _two_steps(optimizer, first, second):
    table = keras.Variable(np.linspace(-1, 1, ROWS * WIDTH).reshape(ROWS, WIDTH).astype("float32"))
    after = []
    for gradient in (first, second):
        optimizer.apply_gradients([(gradient, table)])
        after.append(table.numpy().copy())
    return after


def test_lazy_adam_moves_only_the_rows_of_the_batch():
    first, second = sparse([1, 3], np.ones((2, WIDTH))), sparse([3, 5, 5], np.full((3, WIDTH), -0.5))
    lazy = _two_steps(LazyAdam(learning_rate=0.1), first, second)
    dense = _two_steps(keras.optimizers.Adam(learning_rate=0.1), tf.convert_to_tensor(first), tf.convert_to_tensor(second))
    np.testing.assert_allclose(lazy[0], dense[0], rtol=1e-6, atol=1e-6)  # step 1: untouched rows have zero moments in both
    np.testing.assert_allclose(lazy[1][[3, 5]], dense[1][[3, 5]], rtol=1e-6, atol=1e-6)  # rows of batch 2: Adam's update
    np.testing.assert_array_equal(lazy[1][1], lazy[0][1])  # row 1, not in batch 2: stays where it is ...
    assert np.abs(dense[1][1] - dense[0][1]).min() > 1e-3  # ... where dense Adam keeps moving it by its momentum
    np.testing.assert_array_equal(lazy[1][[0, 2, 4, 6, 7, 8, 9]], lazy[0][[0, 2, 4, 6, 7, 8, 9]])


def test_lazy_adam_equals_adam_on_dense_gradients():
    rng = np.random.default_rng(1)
    gradients = [tf.constant(rng.normal(size=(ROWS, WIDTH)), tf.float32) for _ in range(2)]
    lazy = _two_steps(LazyAdam(learning_rate=0.01, global_clipnorm=1.0), *gradients)
    dense = _two_steps(keras.optimizers.Adam(learning_rate=0.01, global_clipnorm=1.0), *gradients)
    np.testing.assert_allclose(lazy[1], dense[1], rtol=1e-6, atol=1e-6)


def test_embedding_rows_of_unseen_words_stay_put_in_model_fit(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None,), dtype="int64"), keras.layers.Embedding(50, 4, mask_zero=True),
                              keras.layers.GRU(4), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=LazyAdam(global_clipnorm=1.0), loss="sparse_categorical_crossentropy")
    before = model.layers[0].embeddings.numpy().copy()
    x = np.array([[1, 2, 3, 0], [4, 5, 0, 0]] * 8)
    model.fit(x, np.array([0, 1] * 8), batch_size=4, epochs=2, verbose=0)
    after = model.layers[0].embeddings.numpy()
    assert np.abs(after[1:6] - before[1:6]).min() > 0
    np.testing.assert_array_equal(after[6:], before[6:])
    model.save(tmp_path / "model.keras")  # the optimizer is saved with the model and read back
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer, LazyAdam)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("settings,clipped", [({"global_clipnorm": 0.5}, 1.0), ({"global_clipnorm": 100.0}, 0.0),
                                              ({"clipvalue": 0.1}, 1.0), ({"clipvalue": 100.0}, 0.0)])
def test_the_gradient_norm_before_clipping_is_recorded(settings, clipped):
    rng = np.random.default_rng(1)
    embedding = sparse([2, 7, 2], rng.normal(size=(3, WIDTH)))
    kernel_value = rng.normal(size=(WIDTH, 2)).astype("float32")
    table, kernel = keras.Variable(np.zeros((ROWS, WIDTH), "float32")), keras.Variable(np.zeros((WIDTH, 2), "float32"))
    optimizer = LazyAdam(record_gradients=True, **settings)
    optimizer.apply_gradients([(embedding, table), (tf.constant(kernel_value), kernel)])
    dense = np.concatenate([tf.convert_to_tensor(embedding).numpy().ravel(), kernel_value.ravel()])
    optimizer.apply_gradients([(embedding, table), (tf.constant(2 * kernel_value), kernel)])  # the second step
    dense2 = np.concatenate([tf.convert_to_tensor(embedding).numpy().ravel(), 2 * kernel_value.ravel()])
    norms = optimizer.gradient_norms.numpy()
    np.testing.assert_allclose(norms[:3], [np.linalg.norm(dense), np.linalg.norm(dense2), 0.0], rtol=1e-6)
    assert optimizer.clipped.numpy()[0] == clipped
    assert LazyAdam.from_config(optimizer.get_config()).record_gradients
