"""The models: the book's pre-activation bottleneck ResNet and a fast small ResNet for CPUs.

Both return logits (a float32 Dense layer with no softmax) so that the loss can use
`from_logits=True`, which is numerically safer and lets calibration code rescale the logits
(temperature scaling). Weight decay is applied by the optimizer, not by kernel regularisers, so
the training loss in the history is plain cross-entropy.
"""
import keras
import numpy as np
from keras import layers

from pyimagesearch.batch_norm import FusedBatchNormalization
from pyimagesearch.gelu import FusedGELU

# Keras' default BatchNormalization momentum (0.99) averages over ~100 steps, too slow for runs of
# only a few hundred steps per epoch; 0.9 follows the book and keeps evaluation statistics fresh.
BN_MOMENTUM = 0.9
BN_EPSILON = 2e-5
# The fast net's block widths; a recipe's `width` scales them (model.build_network).
FAST_RESNET_WIDTHS = (64, 256, 256)


def _batch_norm(momentum=BN_MOMENTUM, scale=True):
    return FusedBatchNormalization(momentum=momentum, epsilon=BN_EPSILON, scale=scale)


def _gelu():
    # float32 under any policy: TensorFlow's CPU kernels for erf and the products around it are
    # much slower in bfloat16 than in float32, and the next layer casts the result back anyway
    return FusedGELU(dtype="float32")


def _bottleneck(inputs, filters, stride, project_shortcut):
    """Pre-activation bottleneck: BN-ReLU-1x1(f/4), BN-ReLU-3x3(f/4), BN-ReLU-1x1(f), plus shortcut."""
    activated = layers.ReLU()(_batch_norm()(inputs))
    x = layers.Conv2D(filters // 4, 1, use_bias=False)(activated)
    x = layers.ReLU()(_batch_norm()(x))
    x = layers.Conv2D(filters // 4, 3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.ReLU()(_batch_norm()(x))
    x = layers.Conv2D(filters, 1, use_bias=False)(x)
    # When the shape changes, the shortcut is a strided 1x1 convolution of the activated input.
    shortcut = (layers.Conv2D(filters, 1, strides=stride, use_bias=False)(activated)
                if project_shortcut else inputs)
    return layers.Add()([x, shortcut])


def build_preact_resnet(stages=(9, 9, 9), filters=(64, 64, 128, 256), num_classes=10,
                        input_shape=(32, 32, 3)):
    """The book-style CIFAR ResNet: a 3x3 stem of filters[0], then one stage per entry of `stages`
    of that many bottleneck modules with filters[i + 1] outputs; stages after the first halve the
    resolution. (9, 9, 9) / (64, 64, 128, 256) is the 2019 tutorial's ResNet-83."""
    if len(filters) != len(stages) + 1:
        raise ValueError(f"need one more filter count than stages, got stages={stages} "
                         f"filters={filters}")
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(filters[0], 3, padding="same", use_bias=False)(inputs)
    for stage, (depth, stage_filters) in enumerate(zip(stages, filters[1:])):
        stride = 1 if stage == 0 else 2
        x = _bottleneck(x, stage_filters, stride, project_shortcut=True)
        for _ in range(depth - 1):
            x = _bottleneck(x, stage_filters, 1, project_shortcut=False)
    x = layers.ReLU()(_batch_norm()(x))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="preact_resnet")


def dirac_kernel(kernel):
    """A copy of the Conv2D kernel (kh, kw, in, out) whose first min(in, out) filters are the
    identity ("Dirac" initialisation, PyTorch's `nn.init.dirac_`): filter i is 1 at the centre
    tap of input channel i and 0 elsewhere, so it passes channel i through unchanged ("same"
    padding, odd kernel). The remaining filters keep their values."""
    kernel = np.array(kernel, copy=True)
    height, width, in_channels, out_channels = kernel.shape
    count = min(in_channels, out_channels)
    kernel[..., :count] = 0
    kernel[height // 2, width // 2, np.arange(count), np.arange(count)] = 1
    return kernel


def _conv_bn_gelu(x, filters, bn_momentum, bn_scale, pool=False, dirac_init=False):
    conv = layers.Conv2D(filters, 3, padding="same", use_bias=False)
    x = conv(x)
    if dirac_init:  # set after building, so the saved model names only a built-in initialiser
        conv.kernel.assign(dirac_kernel(keras.ops.convert_to_numpy(conv.kernel)))
    if pool:  # pooling before BN computes BN and GELU on a quarter of the pixels
        x = layers.MaxPooling2D(2)(x)
    return _gelu()(_batch_norm(bn_momentum, bn_scale)(x))


BLOCKS = ("residual", "airbench")


def build_fast_resnet(widths=FAST_RESNET_WIDTHS, num_classes=10, input_shape=(32, 32, 3),
                      logit_scale=1 / 8, stem_kernel=None, bn_momentum=BN_MOMENTUM,
                      bn_scale=True, stem_bias=False, block="residual", dirac_init=False):
    """A compact residual net after Keller Jordan's airbench and David Page's ResNet-9: a 2x2 stem
    conv, then one block per width, each halving the resolution (31 -> 15 -> 7 -> 3):
    conv-pool-BN-GELU followed by a residual conv-BN-GELU (`block="residual"`), or by a plain one
    (`block="airbench"`, airbench94's conv groups: no residual add); then global max-pooling and a
    linear classifier. Every block costs about the same FLOPs, so it is cheap for its accuracy.
    `dirac_init`: the first filters of every block conv start as the identity (`dirac_kernel`),
    as airbench's; with the plain block, this makes each block's second conv start as the
    identity, the role the residual add plays otherwise.
    `stem_kernel` (2, 2, channels, 24), e.g. from `whitening.patch_whitening_kernel`, fixes the
    stem's weights (frozen kernel, zero bias) instead of learning them; with `stem_bias` its bias
    stays trainable (the optimizer freezes it later: `optimizer.BatchNormShiftSGD`'s
    `frozen_after_steps`). airbench's batch norms keep their statistics over fewer steps
    (`bn_momentum` 0.4 in Keras' convention) and learn no scale (`bn_scale=False`): the next
    convolution can supply any scale."""
    if block not in BLOCKS:
        raise ValueError(f"unknown block '{block}', expected one of {BLOCKS}")
    inputs = keras.Input(input_shape)
    stem = layers.Conv2D(24, 2, padding="valid", name="stem")
    x = _gelu()(stem(inputs))
    if stem_kernel is not None:
        stem.set_weights([stem_kernel, np.zeros(stem_kernel.shape[-1], np.float32)])
        if stem_bias:
            stem.kernel.trainable = False
        else:
            stem.trainable = False
    for width in widths:
        x = _conv_bn_gelu(x, width, bn_momentum, bn_scale, pool=True, dirac_init=dirac_init)
        second = _conv_bn_gelu(x, width, bn_momentum, bn_scale, dirac_init=dirac_init)
        x = layers.Add()([x, second]) if block == "residual" else second
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dense(num_classes, use_bias=False, dtype="float32")(x)
    # Max-pooled features are large; airbench scales its logits down (by 1/9) so that a high
    # learning rate does not blow the early logits up. Rescaling has no weights.
    outputs = layers.Rescaling(logit_scale, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="fast_resnet")
