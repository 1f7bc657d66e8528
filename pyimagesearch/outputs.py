"""What a run writes beside `--plot`: the plot, `<stem>_report.txt`, `<stem>.json`,
`<stem>_calibration.png` and the trained model, `<stem>.keras`. Every file is written to a
temporary name in the same folder and renamed into place, so a crash never leaves a half-written
file and an old output is only ever replaced by a complete one."""
import contextlib
import json
import math
import os
import tempfile

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
import numpy as np  # noqa: E402


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    folder, name = os.path.split(os.path.abspath(path))
    suffix = os.path.splitext(name)[1]  # matplotlib picks the format from the extension
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=folder)
    os.close(handle)
    os.chmod(temporary, 0o644)  # mkstemp makes it private; results are meant to be shared
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text(path, text):
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)


def _json_safe(value):
    """NaN and infinity are not JSON: write them as null (a diverged run has them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def write_json(path, data):
    write_text(path, json.dumps(_json_safe(data), indent=2) + "\n")


def save_model(path, model):
    """The Keras model (architecture, weights and optimizer state) as one `.keras` file."""
    with atomic_path(path) as temporary:
        model.save(temporary)


def save_figure(figure, path):
    """Lay out, write atomically and close a matplotlib figure."""
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110)
    plt.close(figure)


def plot_history(path, history, title):
    """Training and validation loss (left) and accuracy (right) per epoch."""
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, metric, label in ((loss_axis, "loss", "cross-entropy"),
                                (accuracy_axis, "accuracy", "accuracy")):
        if history.get(metric):
            axis.plot(epochs, history[metric], label=f"train {metric}")
        if history.get(f"val_{metric}"):
            axis.plot(epochs, history[f"val_{metric}"], label=f"val {metric} (hard labels)")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    loss_axis.set_title("loss (train: smoothed targets)")
    accuracy_axis.set_title("accuracy")
    figure.suptitle(title)
    save_figure(figure, path)


def plot_reliability(axis, bins, label=None):
    """Accuracy against mean confidence per bin, with the diagonal of perfect calibration."""
    counts, mean_confidence, accuracy = (np.asarray(part, dtype=float) for part in bins)
    filled = counts > 0
    axis.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
    axis.plot(mean_confidence[filled], accuracy[filled], marker="o", label=label)
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence")
    axis.set_ylabel("accuracy")


def plot_calibration(path, bins, confidences, ece, title):
    """Reliability diagram (left) and histogram of confidences (right) of one run's test set."""
    figure, (reliability_axis, histogram_axis) = plt.subplots(1, 2, figsize=(10, 4.2))
    plot_reliability(reliability_axis, bins)
    reliability_axis.set_title(f"reliability (ECE {ece:.4f})")
    histogram_axis.hist(confidences, bins=np.linspace(0, 1, len(bins[0]) + 1), color="tab:orange")
    histogram_axis.set_xlabel("confidence (max softmax probability)")
    histogram_axis.set_ylabel("test images")
    histogram_axis.set_title("confidence histogram")
    figure.suptitle(title)
    save_figure(figure, path)
