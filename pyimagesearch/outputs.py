"""Where a run's outputs go and how they are written: `<stem>.png`, `<stem>_report.txt`,
`<stem>.json`, `<stem>_calibration.png` and the trained model, `<stem>.keras`, beside `--plot`
(the figures themselves are drawn by figures.py). Every file is written to a temporary name in
the same folder and renamed into place, so a crash never leaves a half-written file and an old
output is only ever replaced by a complete one."""
import contextlib
import json
import math
import os
import tempfile

import numpy as np


def output_paths(plot_path):
    """{'plot', 'report', 'json', 'calibration', 'model', 'backup'} paths derived from the --plot
    path."""
    stem, _ = os.path.splitext(plot_path)
    return {"plot": plot_path, "report": f"{stem}_report.txt", "json": f"{stem}.json",
            "calibration": f"{stem}_calibration.png", "model": f"{stem}.keras",
            "backup": f"{stem}_backup"}


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


# training.py's calls with a title and bare arrays. figures.plot_history(path, result) and
# figures.plot_calibration(path, result), which title a figure from the run's result, replace
# them once training.py passes its result dict.
def plot_history(path, history, title):
    from pyimagesearch import figures

    return figures.plot_history_curves(path, history, None, title)


def plot_calibration(path, bins, confidences, ece, title):
    """`confidences` is not needed: the histogram is drawn from the bins' counts."""
    from pyimagesearch import figures

    counts, mean_confidence, accuracy = bins
    bins = {"count": list(counts), "mean_confidence": list(mean_confidence),
            "accuracy": list(accuracy)}
    return figures.plot_calibration_bins(path, title, None, bins, ece)
