import json

import keras
import numpy as np
import tensorflow as tf

TEXTS = ["an utterly charming , funny film", "boring", "the plot is a mess and the acting is worse", "???"]


def test_saved_model_gives_the_in_process_probabilities_for_raw_strings(tiny_run):
    model = keras.saving.load_model(tiny_run / "model.keras", safe_mode=True)
    expected = model.predict(np.array(TEXTS, dtype=object), verbose=0)
    classes = (tiny_run / "labels.txt").read_text().splitlines()
    export = tiny_run / "export" / "reviews" / "1"
    loaded = tf.saved_model.load(str(export))
    answer = loaded.signatures["serving_default"](text=tf.constant(TEXTS))
    np.testing.assert_allclose(answer["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert [label.decode() for label in answer["label"].numpy()] == [classes[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, rtol=1e-5)


def test_signature_is_tf_serving_predict_with_string_input(tiny_run):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((tiny_run / "export" / "reviews" / "1" / "saved_model.pb").read_bytes())
    signature = proto.meta_graphs[0].signature_def["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    assert list(signature.inputs) == ["text"] and signature.inputs["text"].dtype == tf.string.as_datatype_enum
    assert sorted(signature.outputs) == ["label", "probabilities"]


def test_run_directory_holds_everything_the_issue_lists(tiny_run):
    names = {p.name for p in tiny_run.iterdir()}
    assert {"config.json", "model.keras", "labels.txt", "export", "metrics.json", "history.csv",
            "learning_curves.png", "confusion_matrix.png", "test_predictions.csv"} <= names
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "n"} <= set(metrics["test"]) and {"accuracy", "macro_f1", "n"} <= set(metrics["val"])
    assert metrics["test"]["n"] == 24 and metrics["val"]["n"] == 24 and metrics["epochs_run"] == 1
    assert metrics["classes"] == ["neg", "pos"] and metrics["train_seconds"] > 0
    config = json.loads((tiny_run / "config.json").read_text())
    assert len(config["data"]["data"]["sha256"]) == 64
    assert config["versions"]["keras"] == keras.__version__
    assert config["data_summary"]["rows"] == {"train": 192, "val": 24, "test": 24}
    assert not list(tiny_run.parent.glob(".*partial*"))
