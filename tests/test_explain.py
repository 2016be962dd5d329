"""A look inside: attention weights and activations per step, faithful to what the model computes."""

import numpy as np
import pytest
from click.testing import CliRunner

import seqclf
from seqclf.cli import main
from seqclf.errors import ConfigError
from seqclf.explain import explain, inside


@pytest.fixture(scope="module")
def attentive(reviews):
    """A small text model with attention pooling (the spec's +attn)."""
    return seqclf.SequenceClassifier(arch="bi-cifg:8+attn", epochs=2, batch_size=32).fit(reviews)


def head(estimator, pooled):
    """The model's last layers on a pooled vector: (dropout, off at inference) and the softmax layer."""
    core = next(layer for layer in estimator.model_.layers if hasattr(layer, "layers"))
    return core.get_layer("probabilities")(pooled).numpy()


def test_attention_weights_are_a_distribution_over_the_real_tokens(attentive):
    texts = ["a gripping , funny and moving film", "dull"]
    weights = attentive.attention_weights(texts)
    assert [len(w) for w in weights] == [6, 1]  # punctuation is stripped
    for w in weights:
        assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-5)


def test_the_walk_reproduces_the_prediction(attentive, reviews):
    frame = attentive.adapter_.prepare(reviews.head(5), "x", labeled=False)
    attention, sequence, mask, _ = inside(attentive.model_, attentive.adapter_.raw_inputs(frame))
    context = (attention[..., None] * sequence).sum(axis=1)
    np.testing.assert_allclose(head(attentive, context), attentive.predict_proba(reviews["text"].head(5)), atol=1e-5)
    assert mask.any(axis=1).all() and (attention[~mask] == 0).all() and sequence.shape[-1] == 16  # 2 x 8 units


def test_last_state_models_are_read_step_by_step_with_the_same_weights(reviews):
    clf = seqclf.SequenceClassifier(arch="gru", units=(6,), epochs=1, batch_size=32).fit(reviews)
    frame = clf.adapter_.prepare(reviews.head(4), "x", labeled=False)
    attention, sequence, mask, _ = inside(clf.model_, clf.adapter_.raw_inputs(frame))
    assert attention is None
    last = sequence[np.arange(4), mask.sum(axis=1) - 1]  # the state after each text's last real token
    np.testing.assert_allclose(head(clf, last), clf.predict_proba(reviews["text"].head(4)), atol=1e-5)
    view = explain(clf, ["a gripping film"])
    assert view.steps == ["a", "[UNK]", "film"] and view.activations.shape == (3, 6)  # as the model read it
    with pytest.raises(ConfigError, match="not attention"):
        clf.attention_weights(["a film"])


def test_explanation_pictures_and_cli(attentive, tmp_path):
    view = explain(attentive, ["a gripping , funny film"])
    assert view.steps == ["a", "[UNK]", "funny", "film"] and len(view.attention) == 4
    page = view.to_html()
    assert all(token in page for token in view.steps) and "rgba(255,140,0" in page
    assert len(view.top_units(3)) == 3 and view.figure() is not None
    run = attentive.save(tmp_path / "run")
    result = CliRunner().invoke(main, ["explain", str(run), "--text", "a gripping, funny film"])
    assert result.exit_code == 0, result.output
    assert "most attended steps" in result.output
    assert (run / "explain" / "explain.png").stat().st_size > 5_000
    assert (run / "explain" / "explain.html").read_text().startswith("<!doctype html>")
    assert CliRunner().invoke(main, ["explain", str(run)]).exit_code == 2


def test_series_are_explained_step_by_step(tmp_path):
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(30, 2)) * (2.0 if i % 2 else 0.5) for i in range(24)]
    y = ["loud" if i % 2 else "quiet" for i in range(24)]
    clf = seqclf.SequenceClassifier(arch="lstm", units=(4,), pooling="attention", epochs=1).fit(X, y)
    X[3][10:14] = np.nan  # a gap: those steps are masked and left out of the picture
    view = explain(clf, X, index=3)
    assert len(view.steps) == len(view.attention) == view.activations.shape[0] == 26
    assert "10" not in view.steps and view.steps[10] == "14"
    with pytest.raises(ConfigError, match="out of range"):
        explain(clf, X, index=99)
