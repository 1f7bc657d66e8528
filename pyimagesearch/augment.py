"""Data augmentation as Keras layers and ops, the same on every backend.

Training: `RandomShiftAndFlip` moves each image by up to `max_shift` pixels (reflect padding)
and mirrors half of them: either a random half each batch (`flip=True`) or, as airbench does,
each image on alternate epochs (`flip="alternate"`), so that any two consecutive epochs show every
image once each way. It is a layer of the training model, active only when training, so it
runs inside the compiled training step, on the accelerator where there is one; the 2019 tutorial
did this image by image in Python (ImageDataGenerator), on the host.

Test: `TestTimeAugmented` wraps a trained model so that `predict` averages its logits over the
views of each image listed in `TTA_VIEWS`, all views of a batch in one call.
"""
import keras
from keras import layers, ops


FLIP_MODES = (False, True, "alternate")


def image_parity(images):
    """(B,) int32, 0 or 1: the parity of the sum of each image's pixels (integer-valued, e.g.
    uint8). A bit fixed by the image's content, about as often 0 as 1 over natural images, so it
    needs no per-image state or index."""
    pixel_sum = ops.sum(ops.cast(images, "int32"), axis=(1, 2, 3))
    return ops.mod(pixel_sum, 2)


def alternate_flips(images, epoch):
    """(B,) bool: whether to mirror each image in `epoch` (0-based): its `image_parity` XOR the
    epoch's parity. Each image is mirrored in every other epoch, so in any two consecutive epochs
    it is seen once each way; which of the two comes first differs from image to image."""
    return ops.not_equal(image_parity(images), ops.mod(ops.cast(epoch, "int32"), 2))


def shift_and_flip(images, seed, max_shift, flip=True):
    """Each image (B, H, W, C) moved by a random offset in [-max_shift, max_shift] per axis, its
    border reflected (d c b | a b c d, as numpy's "reflect"), and mirrored left-right: with
    probability 1/2 if `flip` is True, never if False, and where a (B,) bool tensor `flip` is
    true. One gather of the padded batch does shift and flip together. `seed`: a
    `keras.random.SeedGenerator` or an integer."""
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    padded = ops.pad(images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]],
                     mode="reflect")
    padded_height, padded_width = height + 2 * max_shift, width + 2 * max_shift
    offsets = keras.random.randint((batch, 2), 0, 2 * max_shift + 1, seed=seed)  # (B, 2)
    columns = ops.arange(width)[None, :]                                        # (1, W)
    if flip is True:
        flip = keras.random.uniform((batch,), seed=seed) < 0.5                  # (B,)
    if flip is not False:
        columns = ops.where(flip[:, None], width - 1 - columns, columns)        # (B, W)
    rows = offsets[:, :1] + ops.arange(height)[None, :]                         # (B, H) in padded
    columns = offsets[:, 1:] + columns                                          # (B, W) in padded
    flat_index = (ops.arange(batch)[:, None, None] * (padded_height * padded_width)
                  + rows[:, :, None] * padded_width + columns[:, None, :])      # (B, H, W)
    return ops.take(ops.reshape(padded, (-1, channels)), flat_index, axis=0)


@keras.saving.register_keras_serializable(package="pyimagesearch")
class RandomShiftAndFlip(layers.Layer):
    """`shift_and_flip` while training; the identity otherwise. It only moves pixels, so it
    takes the raw uint8 images; keep its dtype float32 under a mixed policy.

    `flip`: one of FLIP_MODES. With "alternate" the images to mirror are `alternate_flips` of
    the epoch, which the layer computes on the device from the training steps it has taken (a
    non-trainable integer weight it updates in `call`, as batch norm updates its statistics;
    a backup restores it on resume, and lookahead averaging, which takes only floating-point
    weights, leaves it alone) divided by `steps_per_epoch`, set before training."""

    def __init__(self, max_shift, flip=True, seed=None, steps_per_epoch=None, **kwargs):
        super().__init__(**kwargs)
        if flip not in FLIP_MODES or not isinstance(flip, (bool, str)):
            raise ValueError(f"unknown flip {flip!r}, expected one of {FLIP_MODES}")
        self.max_shift, self.flip, self.seed = max_shift, flip, seed
        self.steps_per_epoch = steps_per_epoch
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.steps_taken = None
        if flip == "alternate":
            # "only_first_replica": under data parallelism every replica takes the same step
            self.steps_taken = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                               trainable=False, name="steps_taken",
                                               aggregation="only_first_replica")

    def call(self, images, training=False):
        if not training:
            return images
        flip = self.flip
        if flip == "alternate":
            if not self.steps_per_epoch:
                raise ValueError('flip="alternate" needs steps_per_epoch to know the epoch')
            step = ops.convert_to_tensor(self.steps_taken.value)  # steps before this one
            flip = alternate_flips(images, ops.floor_divide(step, self.steps_per_epoch))
            self.steps_taken.assign(step + 1)
        return shift_and_flip(images, self.seed_generator, self.max_shift, flip)

    def compute_output_shape(self, input_shape):
        return input_shape

    # The random generator's state is saved with the layer's weights, so that a run resumed from
    # a backup draws the same shifts and flips as the uninterrupted run (Keras saves a layer's
    # weights but not its seed generators' states).
    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["seed_generator_state"] = self.seed_generator.state

    def load_own_variables(self, store):
        variables = self._trainable_variables + self._non_trainable_variables
        keys = set(store.keys())
        if keys != {str(index) for index in range(len(variables))} | {"seed_generator_state"}:
            raise ValueError(f"Layer '{self.name}' expected {len(variables)} variables and its "
                             f"random state, but received {sorted(keys)}")
        for index, variable in enumerate(variables):
            variable.assign(store[str(index)])
        self.seed_generator.state.assign(store["seed_generator_state"])

    def get_config(self):
        return {**super().get_config(), "max_shift": self.max_shift, "flip": self.flip,
                "seed": self.seed, "steps_per_epoch": self.steps_per_epoch}


def mirrored(images):
    return ops.flip(images, axis=2)


def shifted(images, offset):
    """The batch moved diagonally by `offset` pixels (+1 or -1), reflect-padded at the border:
    output[y, x] = input[y + offset, x + offset]."""
    height, width = images.shape[1], images.shape[2]
    padded = ops.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
    start = 1 + offset
    return padded[:, start:start + height, start:start + width, :]


# Test-time augmentation: the views of each image and the weight of each view's logits.
# "flip_translate" is airbench's: half the flip mean of the image, half that of the image moved
# one pixel up-left and one down-right.
TTA_VIEWS = {
    "none": ((lambda images: images, 1.0),),
    "flip": ((lambda images: images, 0.5), (mirrored, 0.5)),
    "flip_translate": ((lambda images: images, 0.25), (mirrored, 0.25),
                       (lambda images: shifted(images, -1), 0.125),
                       (lambda images: mirrored(shifted(images, -1)), 0.125),
                       (lambda images: shifted(images, 1), 0.125),
                       (lambda images: mirrored(shifted(images, 1)), 0.125)),
}
TTA_MODES = tuple(TTA_VIEWS)


class TestTimeAugmented(keras.Model):
    """`model`'s logits averaged over the views of `tta` (TTA_VIEWS), or with `per_view` each
    view's logits, (B, views, classes), the first view being the image itself. The views of a
    batch go through the model together, image by image (all views of image 0, then of image 1,
    ...), so its logits reshape to (B, views, classes)."""

    def __init__(self, model, tta, per_view=False, **kwargs):
        super().__init__(**kwargs)
        if tta not in TTA_VIEWS:
            raise ValueError(f"unknown tta '{tta}', expected one of {TTA_MODES}")
        self.model, self.tta, self.per_view = model, tta, per_view
        self.view_weights = [weight for _, weight in TTA_VIEWS[tta]]
        # It has no weights of its own and wraps a built model: marked built, so that `predict`
        # does not first run the network eagerly on a batch (under JAX, dozens of small
        # programs to compile) to build it.
        self.built = True

    def call(self, images):
        images = ops.cast(images, "float32")
        views = ops.stack([view(images) for view, _ in TTA_VIEWS[self.tta]], axis=1)
        views = ops.reshape(views, (-1, *images.shape[1:]))   # (B * views, H, W, C)
        logits = ops.cast(self.model(views, training=False), "float32")
        logits = ops.reshape(logits, (-1, len(self.view_weights), logits.shape[-1]))
        if self.per_view:
            return logits
        return ops.einsum("bvk,v->bk", logits, ops.convert_to_tensor(self.view_weights))
