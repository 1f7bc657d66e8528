"""The recipe's model, assembled: raw uint8 images in, logits out.

    training model:  uint8 -> RandomShiftAndFlip (training only; if the recipe augments)
                                                                -> Normalization -> network
    inference model: uint8 ->                                       Normalization -> network

The two share their layers, so they share their weights. Its batch norms and GELUs train through
fused kernels under TensorFlow (batch_norm.FusedBatchNormalization, gelu.FusedGELU); the inference
model is saved with Keras' own layers in their place (`with_builtin_layers`), so its `.keras` file
holds only built-in Keras layers and loads with `keras.saving.load_model` in any Python that has
Keras, on any backend, without this package.
"""
import keras
import numpy as np
from keras import layers

from pyimagesearch import resnet
from pyimagesearch.augment import RandomShiftAndFlip
from pyimagesearch.cifar10 import IMAGE_SHAPE, NUM_CLASSES
from pyimagesearch.optimizer import BatchNormShiftSGD
from pyimagesearch.schedule import learning_rate_schedule

# Variables that weight decay leaves alone: batch-norm scales and shifts, and biases.
NO_WEIGHT_DECAY = ("gamma", "beta", "bias")


def channel_stats(images):
    """Per-channel mean and standard deviation (float32, shape (3,)) of uint8 images (N, H, W, 3).
    Call it on training images only, so nothing about the test set leaks into training."""
    pixels = np.asarray(images, dtype=np.float64).reshape(-1, images.shape[-1])
    return pixels.mean(axis=0).astype(np.float32), pixels.std(axis=0).astype(np.float32)


def normalize(images, mean, std):
    """numpy: uint8 (N, H, W, C) -> float32 standardised with the training-set statistics."""
    return ((np.asarray(images, np.float32) - mean) / std).astype(np.float32)


def build_network(recipe, stem_kernel=None):
    """The recipe's network: standardised float images in, logits out."""
    if recipe["model"] == "fast_resnet":
        widths = tuple(round(width * recipe["width"]) for width in resnet.FAST_RESNET_WIDTHS)
        return resnet.build_fast_resnet(widths=widths, num_classes=NUM_CLASSES,
                                        stem_kernel=stem_kernel,
                                        bn_momentum=recipe["bn_momentum"],
                                        bn_scale=recipe["bn_scale"],
                                        stem_bias=recipe["stem_bias_epochs"] > 0,
                                        block=recipe["block"], dirac_init=recipe["dirac_init"])
    if recipe["model"] == "preact_resnet":
        return resnet.build_preact_resnet(num_classes=NUM_CLASSES)
    raise ValueError(f"unknown model '{recipe['model']}'")


def build_models(recipe, mean, std, stem_kernel=None, seed=None):
    """(training model, inference model) around one network; see the module docstring. `mean`
    and `std` are the training set's channel statistics."""
    network = build_network(recipe, stem_kernel)
    # float32 under any policy: augmentation only moves pixels, and standardised inputs keep
    # their precision until the network's first convolution. Normalization casts the uint8
    # images to float32.
    standardize = layers.Normalization(mean=mean, variance=np.square(std), dtype="float32",
                                       name="standardize")
    images = keras.Input(IMAGE_SHAPE, dtype="uint8", name="images")
    augmented = images
    if recipe["max_shift"] or recipe["flip"]:
        augmented = RandomShiftAndFlip(recipe["max_shift"], recipe["flip"], seed=seed,
                                       dtype="float32", name="random_shift_and_flip")(images)
    training = keras.Model(images, network(standardize(augmented)),
                           name=f"{network.name}_training")
    inference = keras.Model(images, network(standardize(images)), name=network.name)
    return training, inference


def with_builtin_layers(model):
    """`model` with every layer that has a `builtin_layer` (this package's fused layers) replaced
    by that Keras layer, of the same configuration and weights (the same model when it has none):
    what a saved `.keras` file holds, loadable without this package."""
    if not any(hasattr(layer, "builtin_layer") for layer in _all_layers(model)):
        return model

    def builtin(layer):
        if hasattr(layer, "builtin_layer"):
            return layer.builtin_layer()
        return layer.__class__.from_config(layer.get_config())

    # recursive: the network nested in the inference model is cloned layer by layer too
    copy = keras.models.clone_model(model, clone_function=builtin, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _frozen_after_steps(recipe, steps_per_epoch):
    """{variable path: steps it trains for}: the stem's bias for its `stem_bias_epochs`."""
    if not recipe["stem_bias_epochs"]:
        return None
    return {"stem/bias": recipe["stem_bias_epochs"] * steps_per_epoch}


def _set_epoch_length(model, steps_per_epoch):
    """Tell `model`'s augmentation layer how many steps an epoch has (for alternating flips);
    set here, beside the step-based schedule, so both use the same count."""
    for layer in model._flatten_layers():
        if isinstance(layer, RandomShiftAndFlip):
            layer.steps_per_epoch = steps_per_epoch


def compile_model(model, recipe, loss, steps_per_epoch, steps_per_execution=1,
                  jit_compile="auto"):
    """Compile `model` with the recipe's SGD on its learning-rate schedule. `steps_per_execution`
    > 1 runs that many steps per call into the backend (fewer host round trips on a GPU).
    `jit_compile`: Keras' own choice ("auto": XLA under JAX and on a TensorFlow GPU, plain graphs
    on a TensorFlow CPU, eager under PyTorch), or True / False."""
    total_steps = steps_per_epoch * recipe["epochs"]
    schedule = learning_rate_schedule(recipe["schedule"], recipe["lr"], total_steps,
                                      warmup_steps=round(total_steps * recipe["warmup_fraction"]))
    optimizer = BatchNormShiftSGD(learning_rate=schedule, momentum=recipe["momentum"],
                                  nesterov=recipe["nesterov"],
                                  weight_decay=recipe["weight_decay"],
                                  shift_lr_scale=recipe["bn_shift_lr_scale"],
                                  frozen_after_steps=_frozen_after_steps(recipe, steps_per_epoch))
    _set_epoch_length(model, steps_per_epoch)
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"],
                  steps_per_execution=steps_per_execution, jit_compile=jit_compile)
    return model
