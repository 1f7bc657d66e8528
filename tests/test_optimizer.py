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
    optimizer = BatchNormShiftSGD(learning_rate=0.1, momentum=0.85, shift_lr_scale=64,
                                  frozen_after_steps={"stem/bias": 30})
    again = BatchNormShiftSGD.from_config(optimizer.get_config())
    assert again.shift_lr_scale == 64 and again.shift_names == ("beta",)
    assert again.frozen_after_steps == {"stem/bias": 30}
    assert again.momentum == pytest.approx(0.85)


def test_a_frozen_variable_takes_exactly_its_steps_then_keeps_its_value():
    bias = keras.Variable(np.zeros(2, np.float32), name="bias")
    kernel = keras.Variable(np.zeros(2, np.float32), name="kernel")
    optimizer = BatchNormShiftSGD(learning_rate=0.1, momentum=0.85, nesterov=True,
                                  frozen_after_steps={"bias": 2})
    gradients = [1.0, -0.5, 2.0, 0.25]
    biases, kernels = [], []
    for gradient in gradients:
        step = np.full(2, gradient, np.float32)
        optimizer.apply_gradients([(step, bias), (step, kernel)])
        biases.append(keras.ops.convert_to_numpy(bias)[0])
        kernels.append(keras.ops.convert_to_numpy(kernel)[0])
    by_hand = nesterov_steps(gradients, 0.1, 0.85)
    # two Nesterov steps, then the value after step 2; momentum alone would have moved it on
    np.testing.assert_allclose(biases, by_hand[:2] + [by_hand[1]] * 2, rtol=1e-5)
    np.testing.assert_allclose(kernels, by_hand, rtol=1e-5)  # the other variable: every step


def test_a_tiny_model_s_stem_bias_trains_for_its_steps_only():
    images = np.random.default_rng(0).normal(size=(16, 4, 4, 3)).astype(np.float32)
    targets = np.eye(3, dtype=np.float32)[np.arange(16) % 3]
    inputs = keras.Input((4, 4, 3))
    stem = keras.layers.Conv2D(4, 2, name="stem")
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(stem(inputs)))
    network = keras.Model(inputs, outputs)
    stem.kernel.trainable = False  # as the whitened stem's: its bias alone learns
    kernel_before = keras.ops.convert_to_numpy(stem.kernel).copy()
    network.compile(optimizer=BatchNormShiftSGD(learning_rate=0.5, momentum=0.9,
                                                frozen_after_steps={"stem/bias": 3}),
                    loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    biases = [keras.ops.convert_to_numpy(stem.bias).copy()]

    class RecordBias(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            # through model.weights: on JAX that writes the training state into the variables
            bias = next(weight for weight in self.model.weights if weight.path == "stem/bias")
            biases.append(keras.ops.convert_to_numpy(bias).copy())

    network.fit(images, targets, batch_size=4, epochs=2, shuffle=False, verbose=0,
                callbacks=[RecordBias()])  # 8 steps
    moves = [np.abs(after - before).max() for before, after in zip(biases, biases[1:])]
    assert all(move > 1e-6 for move in moves[:3]) and all(move == 0 for move in moves[3:])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(stem.kernel), kernel_before)


def test_freezing_names_a_variable_that_exists():
    optimizer = BatchNormShiftSGD(learning_rate=0.1, frozen_after_steps={"stem/bias": 3})
    with pytest.raises(ValueError, match="stem/bias"):
        optimizer.build([keras.Variable(np.zeros(2, np.float32), name="kernel")])
