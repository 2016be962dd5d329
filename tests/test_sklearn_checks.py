"""scikit-learn's own estimator checks on SequenceClassifier.

The checks feed 2-D arrays of numbers, which seqclf reads as ``(n_samples, n_timesteps)``: one
number per time step. The checks that assume a fixed number of columns, or that NaN is an
error, do not fit sequence input; each is listed with its reason and expected to fail (strict:
if one starts passing, the list is out of date). Checks that fit several models are marked
``slow`` and run with ``pytest -m slow tests/test_sklearn_checks.py`` (about 3 minutes on 2
cores; the last full run: all of them passed but those listed here).
"""

import functools

import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator

from seqclf import SequenceClassifier

ESTIMATOR = SequenceClassifier(units=(2,), epochs=1, batch_size=64)

#: checks that do not apply to sequences, and why
EXPECTED_FAILURES = {
    "check_n_features_in": "the time axis is free (sequences of any length), so there is no fixed n_features_in_",
    "check_n_features_in_after_fitting": "as above: predicting on longer or shorter sequences is allowed",
    "check_classifiers_train": "it expects predict to refuse X with another number of columns, which for seqclf is "
                               "another sequence length, and those are accepted (fit and predict themselves pass)",
    "check_estimators_nan_inf": "NaN marks a missing value and is masked inside the model (infinity is refused: "
                                "tests/test_estimators.py)",
    "check_fit2d_1feature": "one column is one time step; the error says a recurrent model needs two steps",
    "check_estimators_empty_data_messages": "X of shape (n, 0) has no time steps; the error says so in seqclf's words",
    "check_class_weight_classifiers": "class_weight takes 'balanced' or 'none', not a dict of weights",
    "check_classifier_data_not_an_array": "a DataFrame is a table whose columns are found by name (text, label, "
                                          "series, date), not a 2-D array",
}
#: checks that fit several models: run with ``-m slow`` (the others, at most one small fit, run every time)
SLOW = {
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_readonly_memmap_input",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_pipeline_consistency",
    "check_f_contiguous_array_estimator", "check_classifiers_classes", "check_supervised_y_2d",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_dict_unchanged",
    "check_fit_idempotent", "check_classifier_data_not_an_array", "check_classifiers_train",
    "check_n_features_in", "check_n_features_in_after_fitting", "check_estimators_nan_inf",
}


def _name(check):
    return (check.func if isinstance(check, functools.partial) else check).__name__


def _cases():
    for estimator, check in estimator_checks_generator(ESTIMATOR, legacy=True):
        name = _name(check)
        marks = []
        if name in EXPECTED_FAILURES:
            marks.append(pytest.mark.xfail(reason=EXPECTED_FAILURES[name], strict=True))
        if name in SLOW:
            marks.append(pytest.mark.slow)
        yield pytest.param(estimator, check, id=name, marks=marks)


@pytest.mark.parametrize("estimator, check", list(_cases()))
def test_sklearn_check(estimator, check):
    name = _name(check)
    if name == "check_array_api_input":
        pytest.skip("array API input needs SCIPY_ARRAY_API=1 and is not a seqclf input type")
    check(estimator)


def test_the_lists_name_real_checks():
    names = {_name(check) for _, check in estimator_checks_generator(ESTIMATOR, legacy=True)}
    assert set(EXPECTED_FAILURES) <= names and SLOW <= names
