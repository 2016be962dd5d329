"""Vanishing gradients made visible: dL/dx_t by distance from the output, and the gradient norms of training."""

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from click.testing import CliRunner

import seqclf
from seqclf.cli import main
from seqclf.explain import walk_recurrent
from seqclf.gradients import gradient_by_distance
from seqclf.units import run_from


@pytest.fixture(scope="module")
def small(reviews):
    return seqclf.SequenceClassifier(arch="lstm:6", embedding_dim=4, epochs=2, batch_size=32, seed=0).fit(reviews)


def loss_of(rest, x, mask, target):
    return -np.log(rest(tf.constant(x), tf.constant(mask)).numpy()[0, target])


def test_the_norm_at_each_distance_is_the_finite_difference_gradient(small, reviews):
    row = reviews.iloc[[3]]
    profile = gradient_by_distance(small, row)
    frame = small.adapter_.prepare(row, "x")
    walk = walk_recurrent(small.model_, small.adapter_.raw_inputs(frame))
    layer, x, mask = walk.layers[0]
    rest = run_from(layer.input, walk.core)  # the model from the recurrent layer's input on
    x, mask = np.asarray(x, "float32"), np.asarray(mask)
    target = int(small.adapter_.targets(frame, "x")[0])
    last, eps = int(mask.sum()) - 1, 1e-2
    for distance in (0, 1, min(4, last)):
        t = last - distance
        derivative = []
        for k in range(x.shape[-1]):
            up, down = x.copy(), x.copy()
            up[0, t, k] += eps
            down[0, t, k] -= eps
            derivative.append((loss_of(rest, up, mask, target) - loss_of(rest, down, mask, target)) / (2 * eps))
        assert profile.mean[distance] == pytest.approx(np.linalg.norm(derivative), rel=0.05, abs=1e-6)
    assert profile.sequences[0] == 1 and len(profile.distances) == last + 1


def test_profile_over_many_sequences_and_the_cli(small, reviews, tmp_path):
    profile = gradient_by_distance(small, reviews.head(40))
    assert profile.sequences[0] == 40 and (np.diff(profile.sequences) <= 0).all()  # fewer sequences reach further
    assert np.isfinite(profile.mean).all() and profile.ratio(0) == 1.0
    run = small.save(tmp_path / "run")
    reviews.head(40).to_csv(tmp_path / "reviews.csv", index=False)
    result = CliRunner().invoke(main, ["explain", str(run), str(tmp_path / "reviews.csv"), "--gradients"])
    assert result.exit_code == 0, result.output
    assert "distance    0" in result.output
    written = json.loads((run / "explain" / "gradients.json").read_text())["trained"]
    assert written["sequences"][0] == 40 and len(written["mean_norm"]) == len(profile.mean)
    np.testing.assert_allclose(written["mean_norm"], profile.mean, rtol=1e-5)


def test_a_language_model_is_measured_from_its_last_step(tmp_path):
    text = open("datasets/tiny_shakespeare_sample.txt", encoding="utf-8").read()[:6000]
    lm = seqclf.SequenceClassifier(task="next-char", arch="gru:8", max_length=40, epochs=1, seed=0)
    lm.fit(pd.DataFrame({"text": text.splitlines()}))
    profile = gradient_by_distance(lm, pd.DataFrame({"text": text[:2000].splitlines()}))
    assert len(profile.distances) == 40 and profile.mean[0] > 0


@pytest.mark.parametrize("clipnorm,share", [(1e-6, 1.0), (1e6, 0.0)])
def test_training_records_the_gradient_norm_and_how_often_clipping_fired(reviews, clipnorm, share):
    clf = seqclf.SequenceClassifier(arch="gru:4", embedding_dim=4, epochs=2, batch_size=64, clipnorm=clipnorm,
                                    seed=0).fit(reviews)
    history = clf.history_
    assert history["clipped_share"] == [share, share]
    assert all(0 < median <= largest for median, largest in zip(history["gradient_norm_median"],
                                                                 history["gradient_norm_max"]))


def test_texts_are_read_as_given_and_the_reading_is_named(small):
    profile = gradient_by_distance(small, ["a gripping , funny and moving film"])
    assert profile.sequences[0] == 1 and profile.target.startswith("the model's own predictions")
    assert profile.note == ""  # one direction, the last state: the distance is that of backpropagation
    bi = seqclf.SequenceClassifier(arch="bigru:4", pooling="mean", epochs=1, seed=0).fit(
        ["a fine film", "a dull film", "fine", "dull"] * 8, ["pos", "neg", "pos", "neg"] * 8)
    note = gradient_by_distance(bi, ["a fine film"]).note
    assert "bidirectional" in note and "pooling" in note


def test_a_gap_in_a_series_does_not_move_its_last_step():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(12, 1)).astype("float32") for _ in range(16)]
    y = ["a" if series[-1, 0] > 0 else "b" for series in X]
    clf = seqclf.SequenceClassifier(kind="sensor", arch="gru:4", downsample=1, epochs=1, seed=0).fit(X, y)
    gapped = [series.copy() for series in X[:2]]
    for series in gapped:
        series[3:5] = np.nan  # two masked steps inside the series
    whole = gradient_by_distance(clf, pd.DataFrame({"values": gapped, "label": y[:2]}))
    assert len(whole.distances) == 12 and whole.sequences[0] == 2  # distance 0 is the last step, not step 9
    assert whole.sequences[7] == whole.sequences[8] == 0 and whole.sequences[9] == 2  # the gap: steps 4 and 3
