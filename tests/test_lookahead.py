"""Lookahead inside a real `model.fit`, against the same arithmetic done by hand in numpy."""
import keras
import numpy as np
import pytest

from pyimagesearch.callbacks import Lookahead, lookahead_decays

pytestmark = pytest.mark.backend


def test_lookahead_decays_rise_as_the_cube_of_progress():
    steps, decays = lookahead_decays(total_steps=20, every=5)
    np.testing.assert_array_equal(steps, [5, 10, 15, 20])
    np.testing.assert_allclose(decays, 0.95 ** 5 * np.array([1, 8, 27, 64]) / 64)


def test_lookahead_during_fit_matches_a_hand_computation():
    # One weight w fitted to y = 3 by SGD on (w - 3)^2: each step w -= lr * 2 (w - 3).
    # 3 epochs of 4 batches = 12 steps; syncs at steps 5 (in the second epoch) and 10; steps 11
    # and 12 move the fast weight only, and the run ends on the slow one.
    lr, target, start = 0.1, 3.0, 0.5
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    model.layers[0].set_weights([np.array([[start]], np.float32)])
    lookahead = Lookahead(total_steps=12, steps_per_epoch=4, every=5)
    model.fit(np.ones((4, 1), np.float32), np.full((4, 1), target, np.float32), batch_size=1,
              epochs=3, shuffle=False, verbose=0, callbacks=[lookahead])

    steps, decays = lookahead_decays(12, 5)
    decay_at = dict(zip(steps.tolist(), decays.tolist()))
    fast = slow = start
    for step in range(1, 13):
        fast -= lr * 2 * (fast - target)
        if step in decay_at:
            slow += (1 - decay_at[step]) * (fast - slow)
            fast = slow
    assert fast != pytest.approx(slow, abs=1e-3)  # the last two steps moved the fast weight
    final = float(keras.ops.convert_to_numpy(model.layers[0].kernel)[0, 0])
    assert final == pytest.approx(slow, rel=1e-5)
