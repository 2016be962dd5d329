"""The lecture cells against NumPy implementations of their equations, and the architecture spec grammar.

Each NumPy function below is written from the equations (see seqclf.models.cells and the
issue), not from the cells' code: it reads the weights by their role and loops over the steps.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seqclf.errors import ConfigError
from seqclf.models.archs import CELLS, get_architecture
from seqclf.models.builders import build_classifier
from seqclf.models.cells import ODYSSEY_VARIANTS, CIFGCell, JordanCell, OdysseyLSTMCell, PeepholeLSTMCell

UNITS, FEATURES, STEPS = 4, 3, 6


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def blocks(matrix, n):
    return np.split(matrix, n, axis=-1)


def numpy_jordan(x, w):
    y = np.zeros((x.shape[0], UNITS))
    outputs = []
    for t in range(x.shape[1]):
        a = np.tanh(x[:, t] @ w["kernel"] + y @ w["recurrent_kernel"] + w["bias"])
        y = np.tanh(a @ w["output_kernel"] + w["output_bias"])
        outputs.append(y)
    return np.stack(outputs, axis=1)


def numpy_peephole(x, w):
    (W_i, W_f, W_c, W_o), (U_i, U_f, U_c, U_o) = blocks(w["kernel"], 4), blocks(w["recurrent_kernel"], 4)
    b_i, b_f, b_c, b_o = blocks(w["bias"], 4)
    v_i, v_f, v_o = w["peephole_input"], w["peephole_forget"], w["peephole_output"]
    h = c = np.zeros((x.shape[0], UNITS))
    outputs = []
    for t in range(x.shape[1]):
        x_t = x[:, t]
        i = sigmoid(x_t @ W_i + h @ U_i + v_i * c + b_i)
        f = sigmoid(x_t @ W_f + h @ U_f + v_f * c + b_f)
        c_tilde = np.tanh(x_t @ W_c + h @ U_c + b_c)
        c = f * c + i * c_tilde
        o = sigmoid(x_t @ W_o + h @ U_o + v_o * c + b_o)
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def numpy_odyssey(x, w, variant):
    """Greff et al.'s vanilla LSTM with the one change ``variant`` makes (the paper's equations, section 2)."""
    gates = [g for g in "ifo" if variant != f"n{g}g"]
    names = [b for b in "ifco" if b == "c" or b in gates]
    W, U, b = (dict(zip(names, blocks(w[key], len(names)))) for key in ("kernel", "recurrent_kernel", "bias"))
    peephole = {g: w.get(f"peephole_{role}", 0.0) for g, role in zip("ifo", ("input", "forget", "output"))}
    R = {(source, target): block for source, row in zip("ifo", blocks(w["gate_recurrent_kernel"].T, 3))
         for target, block in zip("ifo", blocks(row.T, 3))} if variant == "fgr" else {}
    g = (lambda a: a) if variant == "niaf" else np.tanh
    h_act = (lambda a: a) if variant == "noaf" else np.tanh
    n = x.shape[0]
    h = c = np.zeros((n, UNITS))
    previous = {gate: np.zeros((n, UNITS)) for gate in "ifo"}
    outputs = []
    for t in range(x.shape[1]):
        x_t = x[:, t]

        def activation(gate, cell):
            if gate not in gates:
                return np.ones((n, UNITS))
            total = x_t @ W[gate] + h @ U[gate] + peephole[gate] * cell + b[gate]
            return sigmoid(total + sum(previous[source] @ R[source, gate] for source in "ifo" if R))

        i, f = activation("i", c), activation("f", c)
        c = f * c + i * g(x_t @ W["c"] + h @ U["c"] + b["c"])
        o = activation("o", c)
        h = o * h_act(c)
        previous = {"i": i, "f": f, "o": o}
        outputs.append(h)
    return np.stack(outputs, axis=1)


def numpy_cifg(x, w):
    (W_i, W_c, W_o), (U_i, U_c, U_o) = blocks(w["kernel"], 3), blocks(w["recurrent_kernel"], 3)
    b_i, b_c, b_o = blocks(w["bias"], 3)
    h = c = np.zeros((x.shape[0], UNITS))
    outputs = []
    for t in range(x.shape[1]):
        x_t = x[:, t]
        i = sigmoid(x_t @ W_i + h @ U_i + b_i)
        f = 1.0 - i
        c = f * c + i * np.tanh(x_t @ W_c + h @ U_c + b_c)
        h = sigmoid(x_t @ W_o + h @ U_o + b_o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def numpy_gru_lectures(x, w):
    """z_t, r_t gates; h~_t = tanh(W x_t + U (r_t * h_{t-1}) + b); h_t = (1 - z_t) * h_{t-1} + z_t * h~_t.

    Keras names its update gate the other way round (h_t = z * h_{t-1} + (1 - z) * h~_t), so the
    lectures' z is Keras' 1 - z: its weights are the negated Keras z block, as s(-a) = 1 - s(a).
    """
    (K_z, W_r, W_h), (R_z, U_r, U_h) = blocks(w["kernel"], 3), blocks(w["recurrent_kernel"], 3)
    k_z, b_r, b_h = blocks(w["bias"], 3)
    W_z, U_z, b_z = -K_z, -R_z, -k_z
    h = np.zeros((x.shape[0], UNITS))
    outputs = []
    for t in range(x.shape[1]):
        x_t = x[:, t]
        z = sigmoid(x_t @ W_z + h @ U_z + b_z)
        r = sigmoid(x_t @ W_r + h @ U_r + b_r)
        h_tilde = np.tanh(x_t @ W_h + (r * h) @ U_h + b_h)
        h = (1.0 - z) * h + z * h_tilde
        outputs.append(h)
    return np.stack(outputs, axis=1)


def layer_with_random_weights(layer, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    layer(np.zeros((1, STEPS, FEATURES), dtype))
    for variable in layer.weights:
        variable.assign(rng.normal(0.0, 0.6, size=variable.shape).astype(dtype))
    return layer


def weights_by_role(layer):
    return {v.path.split("/")[-1]: keras.ops.convert_to_numpy(v).astype("float64") for v in layer.weights}


CASES = {
    "jordan": (lambda **kw: keras.layers.RNN(JordanCell(UNITS, **kw), return_sequences=True, **kw), numpy_jordan),
    "peephole-lstm": (lambda **kw: keras.layers.RNN(PeepholeLSTMCell(UNITS, **kw), return_sequences=True, **kw),
                      numpy_peephole),
    "cifg": (lambda **kw: keras.layers.RNN(CIFGCell(UNITS, **kw), return_sequences=True, **kw), numpy_cifg),
    "gru-reset-before": (lambda **kw: keras.layers.GRU(UNITS, reset_after=False, return_sequences=True, **kw),
                         numpy_gru_lectures),
    **{f"lstm-{variant}": (lambda variant=variant, **kw: keras.layers.RNN(OdysseyLSTMCell(UNITS, variant, **kw),
                                                                          return_sequences=True, **kw),
                           lambda x, w, variant=variant: numpy_odyssey(x, w, variant)) for variant in ODYSSEY_VARIANTS},
}
ODYSSEY = [f"lstm-{variant}" for variant in ODYSSEY_VARIANTS]


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_pass_equals_the_equations(name):
    make, reference = CASES[name]
    layer = layer_with_random_weights(make())
    x = np.random.default_rng(1).normal(size=(2, STEPS, FEATURES)).astype("float32")
    np.testing.assert_allclose(layer(x).numpy(), reference(x.astype("float64"), weights_by_role(layer)), atol=1e-5)


@pytest.mark.parametrize("name", ["jordan", "peephole-lstm", "cifg"] + ODYSSEY)
def test_gradient_of_one_step_matches_finite_differences(name):
    make, _ = CASES[name]
    layer = layer_with_random_weights(make(dtype="float64"), dtype="float64")
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 2 if name == "lstm-fgr" else 1, FEATURES)))
    kernel = next(v for v in layer.weights if v.path.endswith("/kernel"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    analytic = tape.gradient(loss, kernel.value).numpy()
    base, eps = kernel.numpy().copy(), 1e-6
    for index in [(0, 0), (1, UNITS - 1), (FEATURES - 1, kernel.shape[1] - 1)]:
        shifted = []
        for sign in (1, -1):
            changed = base.copy()
            changed[index] += sign * eps
            kernel.assign(changed)
            shifted.append(float(tf.reduce_sum(layer(x) ** 2)))
        kernel.assign(base)
        assert analytic[index] == pytest.approx((shifted[0] - shifted[1]) / (2 * eps), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("name", ["jordan", "peephole-lstm", "cifg"] + ODYSSEY)
def test_masked_steps_change_nothing(name):
    make, _ = CASES[name]
    layer = layer_with_random_weights(make())
    x = np.random.default_rng(3).normal(size=(1, STEPS, FEATURES)).astype("float32")
    padded = np.concatenate([x[:, :4], np.full((1, 2, FEATURES), 9.0, "float32")], axis=1)
    mask = np.array([[True] * 4 + [False] * 2])
    np.testing.assert_allclose(layer(padded, mask=mask).numpy()[:, 3], layer(x[:, :4]).numpy()[:, 3], atol=1e-6)
    np.testing.assert_allclose(layer(padded, mask=mask).numpy()[:, 5], layer(x[:, :4]).numpy()[:, 3], atol=1e-6)


def test_each_odyssey_variant_has_exactly_the_weights_its_equations_need():
    d, u = FEATURES, UNITS
    counts = {}
    for variant in ODYSSEY_VARIANTS:
        layer = keras.layers.RNN(OdysseyLSTMCell(u, variant))
        layer(np.zeros((1, STEPS, d), "float32"))
        counts[variant] = layer.count_params()
    vanilla = 4 * (d * u + u * u + u) + 3 * u  # W, U, b per block of i, f, c, o; three peepholes
    peephole = keras.layers.RNN(PeepholeLSTMCell(u))
    peephole(np.zeros((1, STEPS, d), "float32"))
    assert counts["v"] == vanilla == peephole.count_params()
    for removed in ("nig", "nfg", "nog"):  # a gate's W, U, b and peephole go with it
        assert counts[removed] == vanilla - (d * u + u * u + u + u)
    assert counts["niaf"] == counts["noaf"] == vanilla and counts["np"] == vanilla - 3 * u
    assert counts["fgr"] == vanilla + 9 * u * u
    assert OdysseyLSTMCell(u, "nfg").blocks == ("i", "c", "o")
    with pytest.raises(ValueError, match="'variant' parameter of OdysseyLSTMCell must be one of v, nig"):
        OdysseyLSTMCell(u, "nxg")


@pytest.mark.parametrize("cell", [JordanCell(5, activation="relu"), PeepholeLSTMCell(5), CIFGCell(5),
                                  OdysseyLSTMCell(5, "fgr")])
def test_config_round_trip(cell):
    again = type(cell).from_config(cell.get_config())
    assert again.get_config() == cell.get_config() and again.units == 5


@pytest.mark.parametrize("spec", ["jordan", "bi-peephole-lstm:6,4", "cifg+attn", "bigru-reset-before", "bi-lstm-fgr:5,4",
                                  "lstm-nog+attn"])
def test_specs_build_save_load_and_export(spec, tmp_path):
    model = build_classifier(spec, n_classes=3, units=(5,), n_features=FEATURES, dropout=0.2)
    x = np.random.default_rng(4).normal(size=(2, STEPS, FEATURES)).astype("float32")
    expected = model(x).numpy()
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(x).numpy(), expected, atol=1e-6)
    model.export(tmp_path / "saved", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(served.serve(x).numpy(), expected, atol=1e-6)
    per_step = build_classifier(spec.replace("+attn", ""), n_classes=3, units=(5,), n_features=FEATURES,
                                task="many-to-many")
    assert per_step(x).shape == (2, STEPS, 3)


def test_spec_grammar():
    a = get_architecture("bilstm:128,64")
    assert (a.cell.name, a.bidirectional, a.units, a.attention) == ("lstm", True, (128, 64), False)
    assert get_architecture("bi-cifg+attn").attention and get_architecture("bi-cifg+attn").bidirectional
    assert get_architecture("peephole-lstm").cell.name == "peephole-lstm"
    assert set(CELLS) >= {"rnn", "lstm", "gru", "gru-reset-before", "jordan", "peephole-lstm", "cifg", "lstm-nig",
                          "lstm-nfg", "lstm-nog", "lstm-niaf", "lstm-noaf", "lstm-np", "lstm-fgr"}
    assert get_architecture("bi-lstm-fgr:8").cell.name == "lstm-fgr" and get_architecture("bilstm-np").bidirectional
    for bad in ("transformer", "bigru:0", "bigru:a", "gru+attention"):
        with pytest.raises(ConfigError):
            get_architecture(bad)
    model = build_classifier("gru:7,5", n_classes=2, units=(64,), n_features=2)
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.GRU)] == [7, 5]
    with pytest.raises(ConfigError, match="pools with attention"):
        build_classifier("gru+attn", n_classes=2, n_features=2, pooling="mean")
    with pytest.raises(ConfigError, match="recurrent-dropout does not apply"):
        build_classifier("cifg", n_classes=2, n_features=2, recurrent_dropout=0.2)
