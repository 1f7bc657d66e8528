"""batch_norm.FusedBatchNormalization against numpy's batch norm and Keras' own layer, and the
built-in copy a saved model holds."""
import keras
import numpy as np
import pytest
from keras import layers

from pyimagesearch import hardware
from pyimagesearch.batch_norm import FusedBatchNormalization
from pyimagesearch.model import with_builtin_layers

EPSILON = 2e-5


def _pair(scale, momentum, shape, rng):
    """A FusedBatchNormalization and a keras.layers.BatchNormalization with the same weights."""
    fused = FusedBatchNormalization(momentum=momentum, epsilon=EPSILON, scale=scale)
    builtin = layers.BatchNormalization(momentum=momentum, epsilon=EPSILON, scale=scale)
    fused.build(shape)
    builtin.build(shape)
    channels = shape[-1]
    weights = ([rng.uniform(0.5, 2.0, channels)] if scale else []) + [
        rng.normal(size=channels), rng.normal(size=channels), rng.uniform(0.5, 2.0, channels)]
    weights = [w.astype("float32") for w in weights]
    fused.set_weights(weights)
    builtin.set_weights(weights)
    return fused, builtin, weights


@pytest.mark.parametrize("scale", [True, False])
def test_training_step_matches_numpy_and_keras(scale):
    rng = np.random.default_rng(0)
    images = rng.normal(1.5, 3.0, size=(16, 5, 7, 4)).astype("float32")
    momentum = 0.6
    fused, builtin, weights = _pair(scale, momentum, images.shape, rng)
    gamma = weights[0] if scale else np.ones(4, np.float32)
    beta, moving_mean, moving_variance = weights[-3:]

    outputs = hardware.to_numpy(fused(images, training=True))

    x = images.astype(np.float64)
    mean, variance = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # biased, as Keras'
    expected = (x - mean) / np.sqrt(variance + EPSILON) * gamma + beta
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hardware.to_numpy(fused.moving_mean),
                               moving_mean * momentum + mean * (1 - momentum), rtol=1e-5,
                               atol=1e-6)
    # Bessel's correction (n / (n - 1), n = 560) would be far outside the tolerance
    np.testing.assert_allclose(hardware.to_numpy(fused.moving_variance),
                               moving_variance * momentum + variance * (1 - momentum),
                               rtol=1e-5, atol=1e-6)

    builtin_outputs = hardware.to_numpy(builtin(images, training=True))
    np.testing.assert_allclose(outputs, builtin_outputs, rtol=1e-5, atol=1e-5)
    # float32 sums of 560 values in different orders (oneDNN's fused kernel, Keras' ops)
    for mine, keras_own in zip(fused.get_weights(), builtin.get_weights()):
        np.testing.assert_allclose(mine, keras_own, rtol=1e-5)


@pytest.mark.skipif(hardware.backend() != "tensorflow", reason="the fused kernel is TensorFlow's")
def test_gradients_match_keras_batch_norm():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    images = tf.constant(rng.normal(size=(8, 4, 4, 3)).astype("float32"))
    upstream = tf.constant(rng.normal(size=(8, 4, 4, 3)).astype("float32"))
    fused, builtin, _ = _pair(True, 0.9, images.shape, rng)
    gradients = []
    for layer in (fused, builtin):
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = tf.reduce_sum(layer(images, training=True) * upstream)
        gradients.append(tape.gradient(loss, [images, *layer.trainable_variables]))
    assert len(gradients[0]) == 3
    for mine, keras_own in zip(*gradients):
        np.testing.assert_allclose(mine.numpy(), keras_own.numpy(), rtol=1e-4, atol=1e-5)


def test_inference_is_keras_own_bit_for_bit():
    rng = np.random.default_rng(2)
    images = rng.normal(size=(6, 3, 3, 5)).astype("float32")
    fused, builtin, _ = _pair(True, 0.9, images.shape, rng)
    np.testing.assert_array_equal(hardware.to_numpy(fused(images, training=False)),
                                  hardware.to_numpy(builtin(images, training=False)))


def test_the_saved_copy_holds_keras_layers_and_predicts_the_same(tmp_path):
    rng = np.random.default_rng(3)
    inner_inputs = keras.Input((6, 6, 3))
    x = layers.Conv2D(4, 3, padding="same")(inner_inputs)
    x = FusedBatchNormalization(momentum=0.6, scale=False)(x)
    network = keras.Model(inner_inputs, layers.GlobalMaxPooling2D()(x), name="network")
    images = keras.Input((6, 6, 3))
    outer = keras.Model(images, network(layers.Rescaling(0.5)(images)))
    batch = rng.normal(size=(10, 6, 6, 3)).astype("float32")
    outer(batch, training=True)  # moving statistics away from their initial values

    copy = with_builtin_layers(outer)

    kinds = [type(layer) for layer in copy.get_layer(index=2).layers]
    assert layers.BatchNormalization in kinds and FusedBatchNormalization not in kinds
    path = str(tmp_path / "copy.keras")
    copy.save(path)
    assert "FusedBatchNormalization" not in str(keras.saving.load_model(path).get_config())
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(hardware.to_numpy(loaded(batch)),
                                  hardware.to_numpy(outer(batch)))
    # a model without the layer is returned as it is
    assert with_builtin_layers(copy) is copy
