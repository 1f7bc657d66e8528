"""Batch normalisation whose training step runs TensorFlow's fused kernel.

Keras 3's BatchNormalization computes a training step's batch statistics and normalisation as a
dozen elementwise and reduction ops, forward and backward, each a pass over the activations;
TensorFlow's FusedBatchNormV3 (oneDNN's on CPUs) does each direction in one pass. The layer here
is Keras' own with only its training-mode call swapped under the TensorFlow backend: the same
weights, the same normalisation (statistics in float32), the same moving averages. Inference
and every other backend run Keras' code unchanged, and `model.with_builtin_layers` turns a model
back into Keras' layers for saving, so a saved model needs nothing of this package.
"""
import keras
from keras import layers, ops

from pyimagesearch import hardware


@keras.saving.register_keras_serializable(package="pyimagesearch")
class FusedBatchNormalization(layers.BatchNormalization):
    """keras.layers.BatchNormalization (its arguments and weights) whose training-mode call,
    under TensorFlow, on 4-D inputs normalised over the last axis, is one fused kernel."""

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = hardware.fused_batch_norm_training(
            inputs, ops.cast(self.gamma, "float32") if self.scale else None,
            ops.cast(self.beta, "float32") if self.center else None, self.epsilon)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + variance * (1 - self.momentum))
        return ops.cast(outputs, self.compute_dtype)

    def builtin_layer(self):
        """The Keras layer that computes the same: what a saved model holds."""
        return layers.BatchNormalization.from_config(self.get_config())

    def _fused(self, inputs, training, mask):
        return (bool(training) and self.trainable and hardware.backend() == "tensorflow"
                and mask is None and not self.renorm and not self.synchronized
                and len(inputs.shape) == 4 and self.axis in (-1, 3))
