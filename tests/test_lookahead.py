import keras
import numpy as np
import pytest

from pyimagesearch.callbacks import Lookahead, lookahead_decays


def test_lookahead_decays_rise_as_the_cube_of_progress():
    steps, decays = lookahead_decays(total_steps=20, every=5)
    np.testing.assert_array_equal(steps, [5, 10, 15, 20])
    np.testing.assert_allclose(decays, 0.95 ** 5 * np.array([1, 8, 27, 64]) / 64)


def test_lookahead_moves_slow_weights_and_resets_fast_ones():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=keras.optimizers.SGD(), loss="mse")
    weight = model.weights[0]
    callback = Lookahead(total_steps=10, every=5)
    callback.set_model(model)
    weight.assign([[1.0]])
    callback.on_train_begin()  # slow = 1

    def step(iteration, fast):
        weight.assign([[fast]])
        model.optimizer.iterations.assign(iteration)
        callback.on_train_batch_end(iteration - 1)
        return float(weight.numpy()[0, 0])

    assert step(3, 5.0) == 5.0  # not a sync step: untouched
    d5, d10 = 0.95 ** 5 / 8, 0.95 ** 5
    slow = 1 + (1 - d5) * (5.0 - 1)
    assert step(5, 5.0) == pytest.approx(slow)
    assert step(7, 9.0) == 9.0
    callback.on_train_end()  # a run ending between syncs keeps the slow weights
    assert float(weight.numpy()[0, 0]) == pytest.approx(slow)
    slow += (1 - d10) * (9.0 - slow)
    assert step(10, 9.0) == pytest.approx(slow)
