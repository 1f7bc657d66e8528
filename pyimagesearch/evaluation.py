"""Test metrics of a trained model: accuracy, calibration before and after temperature scaling,
the classification report, and the reliability bins."""
import numpy as np
from sklearn.metrics import classification_report

from pyimagesearch import calibration
from pyimagesearch.augment import TTA_VIEWS, TestTimeAugmented
from pyimagesearch.cifar10 import CLASS_NAMES, NUM_CLASSES


# The largest batch to predict in. A run predicts every set (validation each epoch, the test and
# validation sets at the end) in one batch size, padding the last batch: each batch shape is a
# program to compile under JAX and XLA.
PREDICT_BATCH_SIZE = 500


def prediction_batch_size(*set_sizes):
    """The one batch size a run predicts in: PREDICT_BATCH_SIZE, or the largest set if smaller."""
    return max(1, min(PREDICT_BATCH_SIZE, max(set_sizes, default=1)))


def predict_padded(model, images, batch_size):
    """`model.predict` in batches of exactly `batch_size`, the last one padded with copies of
    the first image and its padding dropped from the result: one input shape, one program."""
    padding = -len(images) % batch_size
    if padding:
        images = np.concatenate([images, np.repeat(images[:1], padding, axis=0)])
    predictions = model.predict(images, batch_size=batch_size, verbose=0)
    return predictions[:len(predictions) - padding]


def with_views(model, tta):
    """`model` averaged over the test-time views of `tta` (augment.TTA_VIEWS); itself for none."""
    return model if tta == "none" else TestTimeAugmented(model, tta)


def predict_logits(model, images, tta="none", batch_size=PREDICT_BATCH_SIZE):
    """Logits (N, classes) in float64 of uint8 `images`, averaged over the test-time views of
    `tta`. `model` takes raw images: the inference model, or a saved one."""
    return with_views(model, tta).predict(images, batch_size=batch_size,
                                          verbose=0).astype(np.float64)


def average_views(view_logits, tta):
    """(N, views, classes) logits of each view -> (N, classes), weighted as TTA_VIEWS says."""
    weights = np.array([weight for _, weight in TTA_VIEWS[tta]], dtype=np.float64)
    return np.einsum("nvk,v->nk", view_logits, weights)


def scaled_metrics(logits, labels, val_logits, val_labels):
    """{accuracy, nll, ece, brier, mean_confidence} of `logits`, and the temperature fitted on the
    validation logits with the metrics after scaling by it (None, None without validation)."""
    metrics = calibration.calibration_metrics(logits, labels)
    if not len(val_labels):
        return metrics, None, None
    temperature = calibration.fit_temperature(val_logits, val_labels)
    return metrics, temperature, calibration.calibration_metrics(logits, labels, temperature)


def _bins_json(probabilities, labels):
    counts, mean_confidence, accuracy = calibration.reliability_bins(probabilities, labels)
    return {"count": counts.tolist(), "mean_confidence": mean_confidence.tolist(),
            "accuracy": accuracy.tolist()}


def evaluate(model, test, val, tta, batch_size=PREDICT_BATCH_SIZE):
    """(results for the JSON, classification report text): test metrics on hard labels with the
    views of `tta`, before and after temperature scaling fitted on `val`; the same on one view
    when `tta` has several, taken from the same pass (the first view is the image itself); the
    report as a dict, and the reliability bins before and after scaling. `test` and `val` are
    (images, labels), predicted in batches of `batch_size`."""
    (test_images, test_labels), (val_images, val_labels) = test, val
    # one pass of every view over each set; val and test share its compiled predict
    predictor = TestTimeAugmented(model, tta, per_view=True)
    test_views = predict_padded(predictor, test_images, batch_size).astype(np.float64)
    val_views = (predict_padded(predictor, val_images, batch_size).astype(np.float64)
                 if len(val_labels) else None)
    test_logits = average_views(test_views, tta)
    val_logits = None if val_views is None else average_views(val_views, tta)
    metrics, temperature, scaled = scaled_metrics(test_logits, test_labels, val_logits,
                                                  val_labels)
    probabilities = calibration.softmax(test_logits)
    report = dict(y_true=test_labels, y_pred=probabilities.argmax(axis=1),
                  labels=list(range(NUM_CLASSES)), target_names=list(CLASS_NAMES),
                  zero_division=0)
    results = {
        "test_accuracy": metrics["accuracy"],
        "test_metrics": metrics,
        "temperature": temperature,
        "test_metrics_temperature_scaled": scaled,
        "reliability_bins": _bins_json(probabilities, test_labels),
        "reliability_bins_temperature_scaled": None if temperature is None else _bins_json(
            calibration.softmax(test_logits, temperature), test_labels),
        "classification_report": classification_report(output_dict=True, **report),
    }
    if tta != "none":  # what the network alone does, for calibration studies
        one_view = scaled_metrics(test_views[:, 0], test_labels,
                                  None if val_views is None else val_views[:, 0], val_labels)
        results["one_view"] = dict(zip(("test_metrics", "temperature",
                                        "test_metrics_temperature_scaled"), one_view))
    return results, classification_report(digits=4, **report)
