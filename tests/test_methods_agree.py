"""Method 1 (smoothed targets) and Method 2 (smoothing in the loss) optimise the same objective:
from the same initial weights, the same batches give the same weights."""
import keras
import numpy as np
import pytest

import label_smoothing_func
import label_smoothing_loss
from pyimagesearch import resnet

pytestmark = pytest.mark.backend


def train_a_few_steps(prepare, smoothing, initial_weights, images, one_hot):
    model = resnet.build_fast_resnet(widths=(8, 16), input_shape=(8, 8, 3))
    model.set_weights(initial_weights)
    targets, loss = prepare(one_hot, smoothing)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True), loss=loss)
    for step in range(4):
        batch = slice(step * 8, (step + 1) * 8)
        model.train_on_batch(images[batch], targets[batch])
    return [np.asarray(weight) for weight in model.get_weights()]


@pytest.fixture(scope="module")
def setup():
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(32, 8, 8, 3)).astype(np.float32)
    one_hot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 32)]
    initial = resnet.build_fast_resnet(widths=(8, 16), input_shape=(8, 8, 3)).get_weights()
    return initial, images, one_hot


def test_both_methods_reach_the_same_weights(setup):
    initial, images, one_hot = setup
    func = train_a_few_steps(label_smoothing_func.prepare, 0.2, initial, images, one_hot)
    loss = train_a_few_steps(label_smoothing_loss.prepare, 0.2, initial, images, one_hot)
    unsmoothed = train_a_few_steps(label_smoothing_loss.prepare, 0.0, initial, images, one_hot)
    for before, a, b, plain in zip(initial, func, loss, unsmoothed):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # the comparison is sensitive: training moved the weights, and smoothing changed where to
    assert max(np.abs(a - before).max() for before, a in zip(initial, func)) > 1e-3
    assert max(np.abs(a - plain).max() for a, plain in zip(func, unsmoothed)) > 1e-4
