"""Several members in one model: each its own layers from the shared input and its own share of the training
series, their probabilities averaged.

A small training set leaves a network's test accuracy at the mercy of its initial weights and of
which series it was trained on (ArrowHead's 36 series: 77-81% over three seeds of one design).
Averaging the class probabilities of K members removes much of that spread (Lakshminarayanan,
Pritzel and Blundell 2017, "Simple and scalable predictive uncertainty estimation using deep
ensembles"); measured here, members that differ only in their initial weights gained little
(ArrowHead 78.9% averaged against 74-78% alone), members that had also each left out other series
gained most (83.6%). So each member leaves out one of K folds of the training series (stratified
by class, :func:`member_folds`), as the members of K-fold cross-validation do; together they have
seen every series. The members live in one Keras model: they read the same batches, train in one
fit, export as one SavedModel, and the model's output is their mean (:class:`EnsembleAverage`).
Each member is trained on its own loss over its own series, not the average's: the loss of the
averaged output would let the members lean on each other and lose what makes them differ
(Jeffares, Liu, Crabbé and van der Schaar 2023, "Joint training of deep ensembles fails due to
learner collusion"). :func:`training_view` gives the model that makes this possible: the same
layers, with the members' outputs stacked ``(n, K, n_classes)``, read by :class:`MemberLoss`
(weighted per member by :func:`member_weights`) and :func:`ensemble_accuracy`.
"""

import keras
import numpy as np
from keras import ops

LAYER_NAME = "ensemble_average"
MEMBER_PREFIX = "member_"  # the layers of members 2, 3, ... are named member_2_..., member_3_...


def member_prefix(k):
    """The prefix of the layer names of member ``k`` (from 0): none for the first, so a one-member model is as before."""
    return f"{MEMBER_PREFIX}{k + 1}_" if k else ""


def other_member(layer):
    """Whether ``layer`` belongs to a member other than the first (which is what the looks inside a model show)."""
    return layer.name.startswith(MEMBER_PREFIX)


@keras.saving.register_keras_serializable(package="seqclf")
class EnsembleAverage(keras.layers.Layer):
    """The mean of the members' class probabilities, each ``(n, n_classes)``.

    Examples
    --------
    >>> import numpy as np
    >>> EnsembleAverage()([np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])]).numpy().tolist()
    [[0.75, 0.25]]
    """

    def call(self, members):
        return ops.mean(ops.stack(members, axis=1), axis=1)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def members(model):
    """How many members ``model``'s output averages (1 for a model without an :class:`EnsembleAverage`)."""
    layer = _average(model)
    return 1 if layer is None else len(layer.input)


def training_view(model):
    """The model to train: ``model`` itself, or for an ensemble its layers with the members' probabilities stacked
    ``(n, K, n_classes)`` instead of averaged (the same weights: training the view trains ``model``)."""
    layer = _average(model)
    if layer is None:
        return model
    outputs = [keras.layers.Reshape((1, -1), name=f"member_{k + 1}_row")(member) for k, member in enumerate(layer.input)]
    return keras.Model(model.input, keras.layers.Concatenate(axis=1, name="members")(outputs), name=model.name)


@keras.saving.register_keras_serializable(package="seqclf")
class MemberLoss(keras.losses.Loss):
    """``loss`` of each member's probabilities ``(n, K, n_classes)`` against the targets ``(n, n_classes)``, one value
    per example and member ``(n, K)``, averaged over both by the reduction: the members' own losses, as if each were
    trained alone. Sample weights ``(n, K)`` (:func:`member_weights`) give each member its own examples.

    Examples
    --------
    >>> import numpy as np
    >>> loss = MemberLoss(keras.losses.CategoricalCrossentropy())
    >>> y = np.array([[1.0, 0.0]])
    >>> round(float(loss(y, np.array([[[0.5, 0.5], [0.25, 0.75]]]))), 4) == round(float((np.log(2) + np.log(4)) / 2), 4)
    True
    """

    def __init__(self, loss, name="member_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.loss = loss

    def call(self, y_true, y_pred):
        y_true = ops.broadcast_to(ops.expand_dims(ops.cast(y_true, y_pred.dtype), 1), ops.shape(y_pred))
        return self.loss.call(y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "loss": keras.losses.serialize(self.loss)}

    @classmethod
    def from_config(cls, config):
        return cls(keras.losses.deserialize(config.pop("loss")), **config)


def member_folds(y, k, rng):
    """The fold (0 to ``k`` - 1) each training example ``y`` (class indices ``(n,)``) is left out of: within each class
    the examples in a random order (``rng``), dealt to the folds in turn, so every fold holds about 1/k of every class.

    Examples
    --------
    >>> member_folds(np.array([0, 0, 0, 1, 1, 1]), 3, np.random.default_rng(0)).tolist()
    [1, 2, 0, 2, 1, 0]
    """
    folds = np.zeros(len(y), dtype="int64")
    offset = 0
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        folds[rows] = (np.arange(len(rows)) + offset) % k
        offset += len(rows)  # small classes do not all start at fold 0
    return folds


def member_weights(weights, folds, k):
    """Sample weights ``(n, k)``: each example's own weight ``(n,)`` (its class weight) for the members that train on
    it, 0 for the member whose fold it is in.

    Examples
    --------
    >>> member_weights(np.array([1.0, 2.0]), np.array([0, 1]), 2).tolist()
    [[0.0, 1.0], [2.0, 0.0]]
    """
    return (np.asarray(weights, "float32")[:, None] * (folds[:, None] != np.arange(k))).astype("float32")


def ensemble_accuracy(y_true, y_pred):
    """Whether the averaged probabilities of the members ``(n, K, n_classes)`` pick the target class ``(n, n_classes)``."""
    predicted = ops.argmax(ops.mean(y_pred, axis=1), axis=-1)
    return ops.cast(ops.equal(predicted, ops.argmax(y_true, axis=-1)), "float32")


def _average(model):
    return next((layer for layer in model.layers if isinstance(layer, EnsembleAverage)), None)
