"""Test metrics of a trained model: accuracy, calibration before and after temperature scaling,
the classification report, and the reliability bins."""
import numpy as np
from sklearn.metrics import classification_report

from pyimagesearch import calibration
from pyimagesearch.augment import TestTimeAugmented
from pyimagesearch.cifar10 import CLASS_NAMES, NUM_CLASSES


def with_views(model, tta):
    """`model` averaged over the test-time views of `tta` (augment.TTA_VIEWS); itself for none."""
    return model if tta == "none" else TestTimeAugmented(model, tta)


def predict_logits(model, images, tta="none", batch_size=500):
    """Logits (N, classes) in float64 of uint8 `images`, averaged over the test-time views of
    `tta`. `model` takes raw images: the inference model, or a saved one."""
    return with_views(model, tta).predict(images, batch_size=batch_size,
                                          verbose=0).astype(np.float64)


def scaled_metrics(logits, labels, val_logits, val_labels):
    """{accuracy, nll, ece, brier, mean_confidence} of `logits`, and the temperature fitted on the
    validation logits with the metrics after scaling by it (None, None without validation)."""
    metrics = calibration.calibration_metrics(logits, labels)
    if not len(val_labels):
        return metrics, None, None
    temperature = calibration.fit_temperature(val_logits, val_labels)
    return metrics, temperature, calibration.calibration_metrics(logits, labels, temperature)


def evaluate(model, test, val, tta):
    """(results for the JSON, classification report text, test confidences): test metrics on hard
    labels with the views of `tta`, before and after temperature scaling fitted on `val`; the
    same on one view when `tta` has several; the report as a dict, and the reliability bins.
    `test` and `val` are (images, labels)."""
    (test_images, test_labels), (val_images, val_labels) = test, val
    predictor = with_views(model, tta)  # built once: val and test share its compiled predict
    test_logits = predict_logits(predictor, test_images)
    val_logits = predict_logits(predictor, val_images) if len(val_labels) else None
    metrics, temperature, scaled = scaled_metrics(test_logits, test_labels, val_logits,
                                                  val_labels)
    probabilities = calibration.softmax(test_logits)
    report = dict(y_true=test_labels, y_pred=probabilities.argmax(axis=1),
                  labels=list(range(NUM_CLASSES)), target_names=list(CLASS_NAMES),
                  zero_division=0)
    bins = calibration.reliability_bins(probabilities, test_labels)
    results = {
        "test_accuracy": metrics["accuracy"],
        "test_metrics": metrics,
        "temperature": temperature,
        "test_metrics_temperature_scaled": scaled,
        "reliability_bins": {"count": bins[0].tolist(), "mean_confidence": bins[1].tolist(),
                             "accuracy": bins[2].tolist()},
        "classification_report": classification_report(output_dict=True, **report),
    }
    if tta != "none":  # what the network alone does, for calibration studies
        one_view = scaled_metrics(
            predict_logits(model, test_images), test_labels,
            predict_logits(model, val_images) if len(val_labels) else None, val_labels)
        results["one_view"] = dict(zip(("test_metrics", "temperature",
                                        "test_metrics_temperature_scaled"), one_view))
    return results, classification_report(digits=4, **report), probabilities.max(axis=1)
