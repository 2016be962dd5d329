"""Shared fixtures: small slices of the real movie-review sample and one tiny trained run."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path

import pandas as pd
import pytest

from seqclf.runs import DataSettings, FitSettings, fit_run

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "datasets" / "movie_reviews_sample.csv"
TINY = FitSettings(units=(8,), epochs=1, batch_size=32, seed=0)


@pytest.fixture(scope="session")
def reviews():
    """240 real movie-review sentences, balanced, with ``text`` and ``label`` columns."""
    frame = pd.read_csv(SAMPLE)
    return pd.concat([frame[frame.label == "pos"].head(120), frame[frame.label == "neg"].head(120)]).sample(
        frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="session")
def reviews_csv(reviews, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    reviews.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def tiny_run(reviews_csv, tmp_path_factory):
    """A finished run directory of a one-epoch bigru, shared by the read-only tests."""
    return fit_run(DataSettings(str(reviews_csv)), TINY, out=tmp_path_factory.mktemp("runs") / "tiny", verbose=0)
