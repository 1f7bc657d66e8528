import numpy as np
import pytest

from pyimagesearch import calibration


def test_nll_hand_worked():
    # softmax([0, ln 3]) = [1/4, 3/4]; softmax([ln 4, 0]) = [4/5, 1/5]
    logits = np.array([[0.0, np.log(3.0)], [np.log(4.0), 0.0]])
    labels = np.array([1, 1])
    expected = -(np.log(0.75) + np.log(0.2)) / 2
    assert calibration.negative_log_likelihood(logits, labels) == pytest.approx(expected)
    # temperature 2 halves the logits: softmax([0, ln 3 / 2]) = [1/(1+sqrt3), sqrt3/(1+sqrt3)]
    halved = -(np.log(np.sqrt(3) / (1 + np.sqrt(3))) + np.log(1 / 3)) / 2
    assert calibration.negative_log_likelihood(logits, labels, 2.0) == pytest.approx(halved)


def test_brier_hand_worked():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    labels = np.array([0, 2])
    # (0.09 + 0.04 + 0.01) and (0.25 + 0.25 + 1.0)
    assert calibration.brier_score(probabilities, labels) == pytest.approx((0.14 + 1.5) / 2)


def test_ece_hand_worked():
    probabilities = np.array([
        [0.95, 0.05], [0.95, 0.05],   # bin (14/15, 1]: confidence .95, accuracy 1/2
        [0.62, 0.38], [0.38, 0.62],   # bin (0.6, 2/3]: confidence .62, accuracy 1
        [0.3, 0.7],                   # bin (2/3, 0.733]: confidence .7, accuracy 0
    ])
    labels = np.array([0, 1, 0, 1, 0])
    counts, confidence, accuracy = calibration.reliability_bins(probabilities, labels)
    assert counts.sum() == 5 and counts[14] == 2 and counts[9] == 2 and counts[10] == 1
    expected = 2 / 5 * abs(0.5 - 0.95) + 2 / 5 * abs(1 - 0.62) + 1 / 5 * abs(0 - 0.7)
    assert calibration.expected_calibration_error(probabilities, labels) == pytest.approx(expected)


def test_confidence_one_falls_in_last_bin_and_perfect_calibration_is_zero():
    probabilities = np.array([[1.0, 0.0], [0.0, 1.0]])
    counts, _, _ = calibration.reliability_bins(probabilities, np.array([0, 1]))
    assert counts[-1] == 2
    assert calibration.expected_calibration_error(probabilities, np.array([0, 1])) == 0.0


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(20000, 10))
    true_temperature = 2.5
    true_probabilities = calibration.softmax(logits, true_temperature)
    # labels drawn from softmax(logits / T): the NLL-optimal temperature is T
    cumulative = true_probabilities.cumsum(axis=1)
    labels = (rng.random((20000, 1)) > cumulative).sum(axis=1)
    fitted = calibration.fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)
    before = calibration.calibration_metrics(logits, labels)
    after = calibration.calibration_metrics(logits, labels, fitted)
    assert after["nll"] < before["nll"] and after["ece"] < before["ece"]
    assert after["accuracy"] == before["accuracy"]  # scaling never changes the argmax
