"""gelu.FusedGELU against the exact GELU worked out in float64 (math.erfc), Keras' own layer and
its autodiff gradient, and the built-in copy a saved model holds."""
import math

import keras
import numpy as np
import pytest
from keras import layers

from pyimagesearch import gelu, hardware
from pyimagesearch.gelu import FusedGELU
from pyimagesearch.model import with_builtin_layers

pytestmark = pytest.mark.backend


def _inputs(seed, shape=(8, 5, 5, 6)):
    """float32 values over GELU's whole working range: its curved middle and both tails."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * 3).astype("float32")


def _exact(x):
    """(x·Φ(x), Φ(x) + x·φ(x)) in float64, Φ from math.erfc: GELU and its derivative."""
    x = np.asarray(x, np.float64)
    cdf = 0.5 * np.vectorize(math.erfc)(-x / math.sqrt(2))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return x * cdf, cdf + x * pdf


def test_hand_worked_values():
    # Φ(1) = 0.841344746..., φ(1) = 0.241970724...; GELU(-x) = GELU(x) - x
    outputs = hardware.to_numpy(FusedGELU()(np.array([0.0, 1.0, -1.0], "float32"),
                                            training=True))
    np.testing.assert_allclose(outputs, [0.0, 0.8413447, -0.1586553], rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(hardware.backend() != "tensorflow", reason="the fused kernels are TensorFlow's")
def test_training_step_matches_the_exact_function_and_keras_gradient():
    import tensorflow as tf

    x = tf.constant(_inputs(0))
    upstream = tf.constant(_inputs(1))
    fused, builtin = FusedGELU(), layers.Activation("gelu")
    results = []
    for layer in (fused, builtin):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, training=True)
        results.append((outputs.numpy(), tape.gradient(outputs, x, upstream).numpy()))
    value, derivative = _exact(x.numpy())
    (outputs, gradient), (keras_outputs, keras_gradient) = results
    np.testing.assert_allclose(outputs, value, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gradient, derivative * upstream.numpy(), rtol=1e-5, atol=1e-6)
    # Keras' autodiff of 0.5·x·erfc(-x/√2) is the other formula for the same gradient
    np.testing.assert_allclose(outputs, keras_outputs, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gradient, keras_gradient, rtol=1e-5, atol=1e-6)


def test_training_calls_the_fused_kernels_only_under_tensorflow(monkeypatch):
    calls = []

    def counted(inputs):
        calls.append(inputs.shape)
        return keras.activations.gelu(inputs)

    monkeypatch.setattr(gelu.hardware, "fused_gelu_training", counted)
    inputs = keras.Input((3, 3, 2))
    model = keras.Model(inputs, layers.Conv2D(2, 1)(FusedGELU()(inputs)))
    batch = _inputs(2, (4, 3, 3, 2))
    model(batch, training=False)
    assert calls == []
    model(batch, training=True)  # a model passes `training` down to the layer
    assert len(calls) == (1 if hardware.backend() == "tensorflow" else 0)


def test_inference_is_keras_own_bit_for_bit():
    batch = _inputs(3)
    np.testing.assert_array_equal(hardware.to_numpy(FusedGELU()(batch)),
                                  hardware.to_numpy(layers.Activation("gelu")(batch)))


def test_config_round_trip_and_the_builtin_layer():
    layer = FusedGELU(dtype="float32", name="g")
    again = FusedGELU.from_config(layer.get_config())
    assert again.name == "g" and again.activation is keras.activations.gelu
    builtin = layer.builtin_layer()
    assert type(builtin) is layers.Activation and builtin.get_config() == layer.get_config()


def test_the_saved_copy_holds_keras_layers_and_predicts_the_same(tmp_path):
    inputs = keras.Input((4, 4, 3))
    x = FusedGELU(dtype="float32")(layers.Conv2D(5, 3, padding="same")(inputs))
    model = keras.Model(inputs, layers.GlobalMaxPooling2D()(x))

    copy = with_builtin_layers(model)

    kinds = [type(layer) for layer in copy.layers]
    assert layers.Activation in kinds and FusedGELU not in kinds
    path = str(tmp_path / "copy.keras")
    copy.save(path)
    assert "FusedGELU" not in str(keras.saving.load_model(path).get_config())
    batch = _inputs(4, (6, 4, 4, 3))
    np.testing.assert_array_equal(hardware.to_numpy(keras.saving.load_model(path)(batch)),
                                  hardware.to_numpy(model(batch)))
