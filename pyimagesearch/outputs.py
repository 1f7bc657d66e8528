"""How a run's outputs are written (where they go: `config.RunConfig.paths`; what they are:
writing.py and figures.py). Every file is written to a temporary name in the same folder and
renamed into place, so a crash never leaves a half-written file and an old output is only ever
replaced by a complete one."""
import contextlib
import json
import math
import os
import re
import tempfile

import numpy as np

from pyimagesearch.errors import WriteFailed

# in a run's backup folder (backup.py), the file naming the epoch it holds and that epoch's files;
# here, below the backup, so that the command line can read it without loading Keras
BACKUP_STATE_FILE = "state.json"


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.
    An OSError on the way (a full disk, a folder where the file goes) is raised as WriteFailed,
    naming `path`, and the temporary is removed, so a failed write leaves nothing behind."""
    folder, name = os.path.split(os.path.abspath(path))
    suffix = os.path.splitext(name)[1]  # matplotlib picks the format from the extension
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=folder)
        os.close(handle)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; results are meant to be shared
        yield temporary
        os.replace(temporary, path)
    except WriteFailed:
        raise
    except OSError as error:
        raise WriteFailed(path, error) from error
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)


def remove_temporaries(path):
    """Delete what `atomic_path(path)` leaves when its process is killed mid-write (SIGKILL runs
    no cleanup). Only for a caller that holds the outputs' lock, so that no other process can be
    writing them."""
    folder, name = os.path.split(os.path.abspath(path))
    # mkstemp's names: the prefix, eight characters of its alphabet, the suffix
    left = re.compile(re.escape(f".{name}.") + "[a-z0-9_]{8}"
                      + re.escape(os.path.splitext(name)[1]))
    for entry in os.listdir(folder):
        if left.fullmatch(entry):
            os.remove(os.path.join(folder, entry))


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
