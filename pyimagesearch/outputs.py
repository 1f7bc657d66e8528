"""How a run's outputs are written (where they go: `config.RunConfig.paths`; what they are:
writing.py and figures.py). Every file is written to a temporary name in the same folder and
renamed into place, so a crash never leaves a half-written file and an old output is only ever
replaced by a complete one."""
import contextlib
import json
import math
import os
import tempfile

import numpy as np


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
