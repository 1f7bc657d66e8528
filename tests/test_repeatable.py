"""A run repeats itself, and a resumed run ends as the uninterrupted one: the same command, in
fresh processes, gives the same history, test metrics and model, bit for bit, in the precision
`--precision auto` picks here: bfloat16 on a CPU that runs it fast, where concurrent TensorFlow
ops used to round differently from one call to the next (elsewhere bfloat16 is emulated, many
times slower, and no run uses it). The short runs here are too small to meet that rounding; the
gradient test at the end meets it at its source. The whole runs are run under JAX as well
(`-m backend`): the runs inherit KERAS_BACKEND."""
import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

import label_smoothing_loss
from conftest import tiny_argv, wait_for_backed_up_epochs
from pyimagesearch import cli, hardware

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(argv):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "label_smoothing_loss.py"),
                             *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process):
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return out


# bfloat16 where this CPU runs it fast: the precision in which runs did not repeat (read from
# /proc/cpuinfo, so that importing this module starts no backend)
with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
    PRECISION = hardware.precision_for_cpu(cpuinfo.read())


def run_argv(dataset, plot, recipe, epochs):
    return tiny_argv(dataset, plot, "--recipe", recipe, "--epochs", str(epochs),
                     "--precision", PRECISION, "--seed", "5")


def outcome(plot, images):
    """Everything a run computed: its JSON's numbers (no timings or dates) and its model's
    logits on `images`."""
    result = json.loads(plot.with_suffix(".json").read_text())
    numbers = {key: result[key] for key in ("test_metrics", "test_metrics_temperature_scaled",
                                            "temperature", "one_view", "reliability_bins")}
    numbers["history"] = {key: values for key, values in result["history"].items()
                          if key != "seconds"}
    model = keras.saving.load_model(plot.with_suffix(".keras"))
    return numbers, np.asarray(model.predict(images, verbose=0))


def assert_same(first, second):
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def uninterrupted(tiny_cifar, tmp_path_factory):
    """{recipe: the plot path of an uninterrupted 4-epoch run}."""
    plots = {}
    for recipe in ("fast", "airbench10"):
        plots[recipe] = tmp_path_factory.mktemp(recipe) / "whole.png"
        finish(start(run_argv(tiny_cifar, plots[recipe], recipe, 4)))
    return plots


@pytest.mark.backend
def test_the_same_command_twice_gives_the_same_bits(tiny_cifar, uninterrupted, images,
                                                    tmp_path):
    again = tmp_path / "again.png"
    finish(start(run_argv(tiny_cifar, again, "fast", 4)))
    assert_same(outcome(uninterrupted["fast"], images), outcome(again, images))


@pytest.mark.backend
@pytest.mark.parametrize("recipe", ["fast", "airbench10"])
def test_a_run_killed_between_epochs_resumes_to_the_uninterrupted_result(
        recipe, tiny_cifar, uninterrupted, images, tmp_path):
    plot = tmp_path / "cut.png"
    argv = run_argv(tiny_cifar, plot, recipe, 4)
    process = start(argv)
    wait_for_backed_up_epochs(str(tmp_path / "cut_backup"), 1, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    done = json.loads((tmp_path / "cut_backup" / "state.json").read_text())["epoch"]
    assert done < 4, "the run finished before it was killed"
    out = finish(start(argv))
    assert (f"resuming from {tmp_path / 'cut_backup'}: {done} epochs done, continuing with "
            f"epoch {done + 1}") in out.splitlines()
    assert_same(outcome(uninterrupted[recipe], images), outcome(plot, images))


GRADIENTS_TWICE = """
import hashlib, sys
import keras, numpy as np
from pyimagesearch import hardware, model
from pyimagesearch.recipes import RECIPES
assert hardware.make_repeatable()
keras.mixed_precision.set_global_policy("mixed_bfloat16")
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (256, 32, 32, 3), dtype=np.uint8)
targets = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 256)]
_, network = model.build_models(RECIPES["fast"], np.full(3, 120, np.float32),
                                np.full(3, 60, np.float32), seed=0)
loss = keras.losses.CategoricalCrossentropy(from_logits=True)
import tensorflow as tf
@tf.function
def gradients():
    with tf.GradientTape() as tape:
        value = loss(targets, network(images, training=True))
    return tape.gradient(value, network.trainable_variables)
digests = {hashlib.sha256(b"".join(np.asarray(g).tobytes() for g in gradients())).hexdigest()
           for _ in range(8)}
print(len(digests))
"""


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow setting")
@pytest.mark.skipif(PRECISION != "bfloat16", reason="bfloat16 is emulated on this CPU, and slow")
def test_the_same_bfloat16_gradients_on_every_call():
    """The cause, at its source: the default network's gradients on one batch of 256, computed
    eight times in one process, are the same bits each time (without `make_repeatable`, on a CPU
    with AMX they came out in two or three different roundings)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    completed = subprocess.run([sys.executable, "-c", GRADIENTS_TWICE], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == ["1"]


INTER_OP_THREADS = """
import sys
from pyimagesearch import hardware
hardware.start_runtime(repeatable=sys.argv[1] == "on")
import tensorflow as tf
print(tf.config.threading.get_inter_op_parallelism_threads())
"""


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow setting")
@pytest.mark.parametrize("repeatable, threads", [("on", "1"), ("off", "0")])
def test_repeatable_off_leaves_tensorflow_its_own_threading(repeatable, threads):
    """--repeatable on runs one op at a time; off keeps TensorFlow's default (0: its own
    choice), in a fresh process, since the setting only takes before the runtime starts."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    completed = subprocess.run([sys.executable, "-c", INTER_OP_THREADS, repeatable], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split() == [threads]


def test_repeatable_is_a_flag_of_the_run_not_of_its_identity(tmp_path):
    """A run backed up with --repeatable on resumes with off and back (its numbers change only
    in the last bits); the JSON's args say which it was."""
    argv = ["--plot", str(tmp_path / "run.png"), "--epochs", "3"]
    default = cli.parse_config(label_smoothing_loss.METHOD, argv)
    off = cli.parse_config(label_smoothing_loss.METHOD, [*argv, "--repeatable", "off"])
    assert (default.repeatable, off.repeatable) == (True, False)
    assert (default.args()["repeatable"], off.args()["repeatable"]) == (True, False)
    assert default.identity() == off.identity()
    changed = cli.parse_config(label_smoothing_loss.METHOD, [*argv, "--epochs", "4"])
    assert changed.identity() != default.identity()
