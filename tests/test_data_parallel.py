"""Data parallelism on this CPU: two virtual devices (JAX: XLA's host device count; TensorFlow:
two logical CPUs) train with the same per-epoch loss as one device for the same global batch.

Each backend runs in a subprocess, since the device count is fixed when the backend starts. The
recipe is the default without augmentation, so both runs see the same images; what differs is
where the arithmetic runs and the order of its sums, so the losses agree closely, not exactly, in
the first epoch, and less closely in the second, after training has amplified those roundings
(most under JAX on a CPU without AVX-512)."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

import label_smoothing_loss
from conftest import tiny_argv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRAIN_ON_AND_OFF = r"""
import os, sys
root, dataset, out = sys.argv[1:]
sys.path.insert(0, root)
if os.environ["KERAS_BACKEND"] == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pyimagesearch import recipes
recipes.RECIPES["unaugmented"] = dict(recipes.RECIPES["fast"], max_shift=0, flip=False)
import label_smoothing_loss
for mode in ("off", "on"):
    status = label_smoothing_loss.main([
        "--dataset", dataset, "--plot", os.path.join(out, mode + ".png"), "--recipe",
        "unaugmented", "--train-size", "200", "--val-size", "40", "--test-size", "40",
        "--epochs", "2", "--batch-size", "40", "--precision", "float32", "--data-parallel", mode])
    assert status == 0, (mode, status)
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_two_devices_train_like_one(backend, tiny_cifar, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    completed = subprocess.run([sys.executable, "-c", TRAIN_ON_AND_OFF, ROOT, tiny_cifar,
                                str(tmp_path)], env=env, capture_output=True, text=True,
                               timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    one, two = (json.loads((tmp_path / f"{mode}.json").read_text()) for mode in ("off", "on"))
    assert one["devices"] == ["cpu:0"] and not one["data_parallel"]
    assert two["devices"] == ["cpu:0", "cpu:1"] and two["data_parallel"]
    (first, second), (first_two, second_two) = one["history"]["loss"], two["history"]["loss"]
    assert first_two == pytest.approx(first, rel=0.005)
    assert second_two == pytest.approx(second, rel=0.03)
    # the first tolerance is tight against what training changes: the epochs' losses differ by
    # more
    assert abs(second - first) > 0.01 * first


def test_on_with_one_device_takes_the_distributed_path_and_trains_alike(tiny_cifar, tmp_path):
    """`--data-parallel on` with the one device of this process: Keras' distribution engine
    (MirroredStrategy under TensorFlow, DataParallel under JAX) instead of none."""
    import keras

    if keras.backend.backend() == "jax":
        pytest.skip("DataParallel stays set for the rest of this process")  # subprocess above
    results = {}
    for mode in ("off", "on"):
        argv = tiny_argv(tiny_cifar, tmp_path / f"{mode}.png", "--epochs", "2",
                         "--data-parallel", mode)
        assert label_smoothing_loss.main(argv) == 0
        results[mode] = json.loads((tmp_path / f"{mode}.json").read_text())
    assert results["on"]["devices"] == results["off"]["devices"] == ["cpu:0"]
    assert results["on"]["data_parallel"] and not results["off"]["data_parallel"]
    assert results["on"]["history"]["loss"] == pytest.approx(results["off"]["history"]["loss"],
                                                            rel=0.01)


def test_data_parallel_is_refused_clearly_on_torch(tiny_cifar, tmp_path):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    env = dict(os.environ, KERAS_BACKEND="torch")
    completed = subprocess.run(
        [sys.executable, os.path.join(ROOT, "label_smoothing_loss.py"), "--dataset", tiny_cifar,
         "--plot", str(tmp_path / "p.png"), "--data-parallel", "on"],
        env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2
    assert "--data-parallel on: data parallelism is not available with the torch backend" \
        in completed.stderr
