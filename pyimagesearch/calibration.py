"""Calibration metrics on hard labels, and temperature scaling (Guo et al. 2017).

All functions are pure numpy: `logits` (N, K) float, `labels` (N,) integer class indices.
"""
import numpy as np
from scipy import optimize, special

ECE_BINS = 15  # equal-width confidence bins, as Guo et al. 2017


def softmax(logits, temperature=1.0):
    return special.softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def negative_log_likelihood(logits, labels, temperature=1.0):
    """Mean cross-entropy of the true class (nats)."""
    log_probs = special.log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def brier_score(probabilities, labels):
    """Mean over examples of the squared distance between the probabilities and the one-hot label
    (summed over classes, so it lies in [0, 2])."""
    one_hot = np.eye(probabilities.shape[1])[labels]
    return float(((probabilities - one_hot) ** 2).sum(axis=1).mean())


def reliability_bins(probabilities, labels, num_bins=ECE_BINS):
    """Per equal-width confidence bin: (count, mean confidence, accuracy); empty bins give nan.
    Bins are (lo, hi], as in Guo et al.: confidence 1.0 falls in the last bin."""
    confidences = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    which = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, num_bins - 1)
    counts = np.bincount(which, minlength=num_bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(which, confidences, num_bins) / counts
        accuracy = np.bincount(which, correct.astype(np.float64), num_bins) / counts
    return counts, mean_confidence, accuracy


def expected_calibration_error(probabilities, labels, num_bins=ECE_BINS):
    """Sum over bins of (bin size / N) * |accuracy - mean confidence|."""
    counts, mean_confidence, accuracy = reliability_bins(probabilities, labels, num_bins)
    filled = counts > 0
    return float((counts[filled] / counts.sum()
                  * np.abs(accuracy[filled] - mean_confidence[filled])).sum())


def fit_temperature(logits, labels):
    """The temperature T > 0 minimising the NLL of softmax(logits / T) on held-out data."""
    result = optimize.minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, np.exp(log_t)),
        bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def calibration_metrics(logits, labels, temperature=1.0):
    """Accuracy, NLL, ECE, Brier score and mean confidence of softmax(logits / temperature)."""
    probabilities = softmax(logits, temperature)
    return {
        "accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
        "nll": negative_log_likelihood(logits, labels, temperature),
        "ece": expected_calibration_error(probabilities, labels),
        "brier": brier_score(probabilities, labels),
        "mean_confidence": float(probabilities.max(axis=1).mean()),
    }
