"""The recipe's model as `model.build_models` and `model.compile_model` assemble it: the wiring
of the optimizer against the real variables, and the two models sharing one network."""
import keras
import numpy as np
import pytest

from pyimagesearch import model, recipes

pytestmark = pytest.mark.backend


@pytest.fixture(scope="module")
def compiled():
    recipe = recipes.RECIPES["fast"]
    mean, std = np.array([125, 123, 114], np.float32), np.array([63, 62, 66], np.float32)
    stem_kernel = np.random.default_rng(0).normal(size=(2, 2, 3, 24)).astype(np.float32)
    training, inference = model.build_models(recipe, mean, std, stem_kernel, seed=0)
    model.compile_model(training, recipe, keras.losses.CategoricalCrossentropy(from_logits=True),
                        steps_per_epoch=100)
    training.optimizer.build(training.trainable_variables)
    return recipe, training, inference


def batch_norm_layers(network):
    return [layer for layer in network._flatten_layers()
            if isinstance(layer, keras.layers.BatchNormalization)]


def test_optimizer_settings_are_the_recipe_s(compiled):
    recipe, training, _ = compiled
    optimizer = training.optimizer
    assert optimizer.momentum == pytest.approx(recipe["momentum"]) and optimizer.nesterov
    assert optimizer.weight_decay == pytest.approx(recipe["weight_decay"])
    # the triangle over 14 x 100 steps: 0.2 x peak at step 0, the peak at the end of warm-up
    # (round(1400 x 0.23) = 322 steps), 0.07 x peak at the last step
    schedule, peak = optimizer._learning_rate, recipe["lr"]
    assert schedule.warmup_steps == 322 and schedule.total_steps == 1400
    for step, expected in ((0, 0.2 * peak), (322, peak), (1400, 0.07 * peak)):
        assert float(keras.ops.convert_to_numpy(schedule(step))) == pytest.approx(expected)


def test_exactly_the_batch_norm_shifts_step_faster(compiled):
    _, training, _ = compiled
    shifts = {id(layer.beta) for layer in batch_norm_layers(training)}
    assert len(shifts) == 6  # two batch norms in each of the three blocks
    scaled = {id(variable) for variable in training.trainable_variables
              if training.optimizer.is_shift(variable)}
    assert scaled == shifts


def test_weight_decay_reaches_exactly_the_kernels(compiled):
    _, training, _ = compiled
    decayed = {variable.path for variable in training.trainable_variables
               if training.optimizer._use_weight_decay(variable)}
    kernels = {layer.kernel.path for layer in training._flatten_layers()
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
               and layer.trainable}
    assert decayed == kernels and len(kernels) == 7  # six 3x3 convolutions and the classifier;
    # the whitened stem is frozen


def test_the_inference_model_shares_the_network_and_skips_augmentation(compiled):
    _, training, inference = compiled
    assert {id(v) for v in inference.weights} <= {id(v) for v in training.weights}
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(training(images, training=False)),
                               keras.ops.convert_to_numpy(inference(images)), rtol=1e-6)
    assert not any(isinstance(layer, model.RandomShiftAndFlip) for layer in inference.layers)


def test_every_recipe_has_the_same_entries_and_the_presets_keep_their_behaviour():
    keys = set(recipes.RECIPES["fast"])
    assert all(set(recipe) == keys for recipe in recipes.RECIPES.values())
    # the airbench entries' defaults: random flips (none in overfit), no stem bias, residual
    # blocks, Glorot initialisation
    for name, flip in (("fast", True), ("tutorial", True), ("overfit", False)):
        recipe = recipes.RECIPES[name]
        assert (recipe["flip"], recipe["stem_bias_epochs"], recipe["block"],
                recipe["dirac_init"]) == (flip, 0, "residual", False)
    assert [recipes.RECIPES[name]["bn_momentum"] for name in ("fast", "tutorial", "overfit")] \
        == [0.4, 0.9, 0.4]
    assert recipes.DEFAULT_RECIPE == "airbench12"
    airbench10, fast = recipes.RECIPES["airbench10"], recipes.RECIPES["fast"]
    assert recipes.RECIPES["airbench12"] == dict(airbench10, epochs=12)
    assert recipes.RECIPES["airbench11"] == dict(airbench10, epochs=11, weight_decay=6e-3)
    assert {key: value for key, value in airbench10.items() if value != fast[key]} == dict(
        epochs=10, flip="alternate", stem_bias_epochs=3, bn_momentum=0.6, block="airbench",
        dirac_init=True)


def test_the_compiled_default_has_no_frozen_variable_and_no_flip_counter(compiled):
    _, training, _ = compiled
    assert training.optimizer.frozen_after_steps == {}
    assert training.get_layer("random_shift_and_flip").steps_taken is None


def test_compile_model_wires_the_stem_bias_epochs_and_the_flip_epoch_length():
    recipe = dict(recipes.RECIPES["fast"], flip="alternate", stem_bias_epochs=3,
                  block="airbench", dirac_init=True)
    mean, std = np.array([125, 123, 114], np.float32), np.array([63, 62, 66], np.float32)
    stem_kernel = np.random.default_rng(0).normal(size=(2, 2, 3, 24)).astype(np.float32)
    training, inference = model.build_models(recipe, mean, std, stem_kernel, seed=0)
    augment = training.get_layer("random_shift_and_flip")
    assert augment.flip == "alternate" and augment.steps_per_epoch is None
    model.compile_model(training, recipe, keras.losses.CategoricalCrossentropy(from_logits=True),
                        steps_per_epoch=100)
    assert augment.steps_per_epoch == 100
    assert training.optimizer.frozen_after_steps == {"stem/bias": 300}
    training.optimizer.build(training.trainable_variables)  # finds the stem's bias by its path
    assert "stem/bias" in {variable.path for variable in training.trainable_variables}
    assert not any(isinstance(layer, keras.layers.Add) for layer in inference._flatten_layers())
