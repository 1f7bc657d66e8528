import keras
import numpy as np
import pytest

from pyimagesearch.optimizer import BatchNormShiftSGD

pytestmark = pytest.mark.backend


def nesterov_steps(gradients, lr, momentum):
    """Keras' Nesterov SGD by hand: m = mu m - lr g; w += mu m - lr g. Returns w after each step."""
    weight, velocity, weights = 0.0, 0.0, []
    for gradient in gradients:
        velocity = momentum * velocity - lr * gradient
        weight += momentum * velocity - lr * gradient
        weights.append(weight)
    return weights


def test_beta_steps_with_the_scaled_learning_rate_and_others_with_the_plain_one():
    beta = keras.Variable(np.zeros(2, np.float32), name="beta")
    kernel = keras.Variable(np.zeros(2, np.float32), name="kernel")
    optimizer = BatchNormShiftSGD(learning_rate=0.01, momentum=0.9, nesterov=True,
                                  shift_lr_scale=64)
    gradients = [0.5, -0.25, 1.0]
    for gradient in gradients:
        step = np.full(2, gradient, np.float32)
        optimizer.apply_gradients([(step, beta), (step, kernel)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(beta),
                               nesterov_steps(gradients, 0.64, 0.9)[-1], rtol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kernel),
                               nesterov_steps(gradients, 0.01, 0.9)[-1], rtol=1e-5)


def test_config_round_trip():
    optimizer = BatchNormShiftSGD(learning_rate=0.1, momentum=0.85, shift_lr_scale=64)
    again = BatchNormShiftSGD.from_config(optimizer.get_config())
    assert again.shift_lr_scale == 64 and again.shift_names == ("beta",)
    assert again.momentum == pytest.approx(0.85)
