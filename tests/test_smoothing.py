import keras
import numpy as np
import pytest

import label_smoothing_func
import pyimagesearch
from pyimagesearch.smoothing import smooth_labels


def test_hand_worked_values_on_integer_labels():
    labels = np.array([[0, 1, 0], [1, 0, 0]])  # int64, as np.eye(...)[y].astype(int) gives
    smoothed = smooth_labels(labels, 0.3)
    # true class: 1 - 0.3 + 0.3 / 3 = 0.8; others: 0.3 / 3 = 0.1
    np.testing.assert_allclose(smoothed, [[0.1, 0.8, 0.1], [0.8, 0.1, 0.1]], rtol=1e-6)
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0, rtol=1e-6)
    assert smoothed.dtype == np.float32


def test_pure_and_factor_zero_is_identity():
    labels = np.eye(10, dtype=np.float32)[[3, 1, 4]]
    before = labels.copy()
    smoothed = smooth_labels(labels, 0.1)
    np.testing.assert_array_equal(labels, before)  # argument untouched
    assert smoothed is not labels
    np.testing.assert_allclose(smoothed[0, 3], 0.91, rtol=1e-6)
    np.testing.assert_allclose(smoothed[0, 0], 0.01, rtol=1e-6)
    np.testing.assert_array_equal(smooth_labels(labels, 0.0), labels)


@pytest.mark.parametrize("factor", [-0.1, 1.0, 1.5])
def test_rejects_factor_outside_unit_interval(factor):
    with pytest.raises(ValueError, match="smoothing factor"):
        smooth_labels(np.eye(3), factor)


@pytest.mark.parametrize("shape", [(10,), (2, 3, 4)])
def test_rejects_labels_that_are_not_2d(shape):
    with pytest.raises(ValueError, match="2-D"):
        smooth_labels(np.zeros(shape), 0.1)


def test_importable_from_script_and_package():
    assert label_smoothing_func.smooth_labels is smooth_labels
    assert pyimagesearch.smooth_labels is smooth_labels


@pytest.mark.parametrize("factor", [0.0, 0.1, 0.2])
def test_loss_on_smoothed_labels_equals_keras_label_smoothing(factor):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(16, 10)).astype(np.float32) * 3
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]
    method_1 = keras.losses.CategoricalCrossentropy(from_logits=True)(
        smooth_labels(labels, factor), logits)
    method_2 = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=factor)(
        labels, logits)
    # an independent formula: mean over rows of -sum_k q_k log softmax(z)_k
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    targets = labels * (1 - factor) + factor / 10
    expected = -(targets * log_softmax).sum(axis=1).mean()
    np.testing.assert_allclose(float(method_1), expected, rtol=1e-5)
    np.testing.assert_allclose(float(method_2), expected, rtol=1e-5)
