"""GELU whose training step runs as two fused kernels under TensorFlow.

TensorFlow runs Keras' exact GELU, 0.5·x·erfc(-x/√2), and its autodiff gradient as many
elementwise ops, each a pass over some of the network's largest tensors; on a CPU that
memory traffic, not the arithmetic, is what it costs. The layer here is Keras'
`Activation("gelu")` whose training-mode call, under TensorFlow, computes the same function and
its analytic gradient, Φ(x) + x·φ(x), each in one XLA-compiled kernel
(`hardware.fused_gelu_training`). The values agree with Keras' to float32 rounding. Inference and
every other backend run Keras' code unchanged (JAX compiles the whole step and fuses it anyway),
and `model.with_builtin_layers` turns it back into Keras' layer for saving.
"""
import keras
from keras import layers

from pyimagesearch import hardware


@keras.saving.register_keras_serializable(package="pyimagesearch")
class FusedGELU(layers.Activation):
    """keras.layers.Activation("gelu") (exact, not the tanh approximation) whose training-mode
    call under TensorFlow is `hardware.fused_gelu_training`."""

    def __init__(self, **kwargs):
        kwargs.pop("activation", None)  # always GELU; from_config passes Activation's config
        super().__init__("gelu", **kwargs)

    def call(self, inputs, training=None):
        if training and hardware.backend() == "tensorflow":
            return hardware.fused_gelu_training(inputs)
        return super().call(inputs)

    def builtin_layer(self):
        """The Keras layer that computes the same: what a saved model holds."""
        return layers.Activation.from_config(self.get_config())
