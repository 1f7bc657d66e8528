"""A run repeats itself, and a resumed run ends as the uninterrupted one: the same command, in
fresh processes, gives the same history, test metrics and model, bit for bit (bfloat16 included,
where concurrent TensorFlow ops used to round differently from one run to the next)."""
import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import tiny_argv, wait_for_backed_up_epochs

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


def run_argv(dataset, plot, recipe, epochs):
    # bfloat16 whatever the CPU: the precision in which runs did not repeat
    return tiny_argv(dataset, plot, "--recipe", recipe, "--epochs", str(epochs),
                     "--precision", "bfloat16", "--seed", "5")


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


def test_the_same_command_twice_gives_the_same_bits(tiny_cifar, uninterrupted, images,
                                                    tmp_path):
    again = tmp_path / "again.png"
    finish(start(run_argv(tiny_cifar, again, "fast", 4)))
    assert_same(outcome(uninterrupted["fast"], images), outcome(again, images))


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
