"""Shared fixtures: a tiny CIFAR-10 in the official python layout, written by the tests."""
import json
import os
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# JAX's compilation cache goes to a folder of the test session's, not the user's cache
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="label-smoothing-tests-cache-")

# Runs called in this process (label_smoothing_*.main) find the backend started by earlier
# tests: set it up as each run does in its own process, before anything starts it.
from pyimagesearch import tf_settings  # noqa: E402

tf_settings.set_defaults()
from pyimagesearch import cifar10, hardware  # noqa: E402

assert hardware.make_repeatable()


def tiny_argv(dataset, plot, *extra):
    """Command-line arguments for a seconds-long run on `tiny_cifar`: 120 train / 40 val / 30 test
    images, batch 32, float32."""
    return ["--dataset", dataset, "--plot", str(plot), "--batch-size", "32", "--train-size",
            "160", "--val-size", "40", "--test-size", "30", "--precision", "float32", *extra]


def wait_for_backed_up_epochs(backup, count, process, timeout=600):
    """Poll until the run's backup (backup.EpochBackup) has saved `count` epochs."""
    metadata = os.path.join(backup, "state.json")
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        try:
            with open(metadata) as handle:
                if json.load(handle)["epoch"] >= count:
                    return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    raise AssertionError("the run ended or stalled before its backup appeared")


@pytest.fixture(autouse=True)
def float32_policy():
    """A run with --precision auto sets a global mixed policy; tests start from float32."""
    import keras

    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory):
    return cifar10.write_random_folder(str(tmp_path_factory.mktemp("cifar")))
