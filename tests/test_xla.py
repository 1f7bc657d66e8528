"""TensorFlow's GPU path, as near as a CPU gets to it: Keras compiles the training step with XLA
on a TensorFlow GPU (jit_compile="auto"), plain graphs on a CPU. Here the default model, with
mixed_bfloat16, lookahead and the in-model augmentation, trains under jit_compile=True on the
CPU and must learn as the graph-mode run does."""
import keras
import numpy as np
import pytest

from pyimagesearch.callbacks import Lookahead
from pyimagesearch.model import build_models, channel_stats, compile_model
from pyimagesearch.recipes import RECIPES

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="XLA against graph mode is TensorFlow's choice")

STEPS, BATCH = 6, 16


def train(jit_compile, images, targets):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(5)
    recipe = dict(RECIPES["fast"], epochs=2, lr=0.2)
    mean, std = channel_stats(images)
    training, _ = build_models(recipe, mean, std, seed=5)
    steps_per_epoch = STEPS // 2
    compile_model(training, recipe, keras.losses.CategoricalCrossentropy(from_logits=True),
                  steps_per_epoch, jit_compile=jit_compile)
    assert training.jit_compile is jit_compile  # Keras compiles the step as asked
    assert recipe["lookahead"] and recipe["max_shift"] and recipe["flip"]
    history = training.fit(images, targets, batch_size=BATCH, epochs=2, shuffle=False,
                           verbose=0, callbacks=[Lookahead(STEPS, steps_per_epoch, every=2)])
    return history.history["loss"], training.evaluate(images, targets, batch_size=BATCH,
                                                      verbose=0, return_dict=True)


def test_xla_training_step_learns_like_the_graph_mode_one():
    rng = np.random.default_rng(0)
    labels = np.arange(BATCH * STEPS // 2) % 10
    # a learnable task: each class is a fixed random image plus a little noise
    prototypes = rng.integers(0, 256, (10, 32, 32, 3))
    images = np.clip(prototypes[labels] + rng.normal(0, 8, (len(labels), 32, 32, 3)), 0,
                     255).astype(np.uint8)
    targets = np.eye(10, dtype=np.float32)[labels]
    graph_losses, graph_final = train(False, images, targets)
    xla_losses, xla_final = train(True, images, targets)
    keras.mixed_precision.set_global_policy("float32")
    assert xla_losses[-1] < xla_losses[0] and graph_losses[-1] < graph_losses[0]
    # bfloat16 rounding differs between the two compilers; the learning must not
    np.testing.assert_allclose(xla_losses, graph_losses, rtol=0.1)
    assert xla_final["loss"] == pytest.approx(graph_final["loss"], rel=0.2)
