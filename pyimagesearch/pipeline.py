"""tf.data input pipelines, and prediction through them. Training batches are gathered,
normalised and augmented whole, as tensor ops.

The 2019 tutorial augmented image by image in Python (ImageDataGenerator): one Python thread,
about 12,000 images/s here, which caps any faster network and competes with it for the cores.
Here each batch is one `tf.gather` of shuffled indices, one reflect-pad, one gather per axis for
the random translation and one `tf.where` for the flips (46,000-51,000 images/s; bench/).
"""
import numpy as np
import tensorflow as tf


def channel_stats(images):
    """Per-channel mean and standard deviation (float32, shape (3,)) of uint8 images (N, H, W, 3).
    Call it on training images only, so nothing about the test set leaks into training."""
    pixels = np.asarray(images, dtype=np.float64).reshape(-1, images.shape[-1])
    return pixels.mean(axis=0).astype(np.float32), pixels.std(axis=0).astype(np.float32)


def normalize(images, mean, std):
    """uint8 (B, H, W, C) -> float32 standardised with the training-set statistics."""
    return (tf.cast(images, tf.float32) - mean) / std


def translate_and_flip(images, seed, max_shift):
    """Randomly shift each image by up to `max_shift` pixels (reflect padding) and flip half of them
    left-right. `images` (B, H, W, C) float; `seed` a stateless seed of shape (2,)."""
    batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    shift_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if max_shift > 0:
        padded = tf.pad(images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]],
                        mode="REFLECT")
        offsets = tf.random.stateless_uniform((batch, 2), shift_seed, 0, 2 * max_shift + 1,
                                              dtype=tf.int32)
        rows = offsets[:, :1] + tf.range(height)[None, :]  # (B, H) source rows per image
        cols = offsets[:, 1:] + tf.range(width)[None, :]   # (B, W) source columns per image
        images = tf.gather(padded, rows, axis=1, batch_dims=1)
        images = tf.gather(images, cols, axis=2, batch_dims=1)
    flip = tf.random.stateless_uniform((batch,), flip_seed) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def training_dataset(images, targets, batch_size, mean, std, max_shift, seed):
    """Shuffled, augmented batches of (float32 images, float32 targets), reshuffled every epoch.
    `targets` are one-hot or already-smoothed rows (N, num_classes)."""
    images = tf.constant(images)
    targets = tf.constant(targets, dtype=tf.float32)
    count = int(images.shape[0])
    batches = (tf.data.Dataset.range(count)
               .shuffle(count, seed=seed, reshuffle_each_iteration=True)
               .batch(batch_size))
    # One fresh stateless seed per batch, different every epoch, reproducible from `seed`.
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def make_batch(indices, batch_seed):
        batch = normalize(tf.gather(images, indices), mean, std)
        return translate_and_flip(batch, batch_seed, max_shift), tf.gather(targets, indices)

    return (tf.data.Dataset.zip(batches, batch_seeds)
            .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def inference_dataset(images, mean, std, batch_size=1000):
    """Normalised batches of images in order, for prediction."""
    return (tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
            .map(lambda batch: normalize(batch, mean, std), num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def _shifted(batch, offset):
    """The batch moved diagonally by `offset` pixels (+1 or -1), reflect-padded at the border."""
    padded = tf.pad(batch, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    start = 1 + offset
    return padded[:, start:start + tf.shape(batch)[1], start:start + tf.shape(batch)[2], :]


def _mirrored(batch):
    return tf.reverse(batch, axis=[2])


# Test-time augmentation: the views of each image and the weight of each view's logits.
# "flip_translate" is airbench's: half the flip mean of the image, half that of the image moved
# one pixel up-left and one down-right.
TTA_VIEWS = {
    "none": ((lambda batch: batch, 1.0),),
    "flip": ((lambda batch: batch, 0.5), (_mirrored, 0.5)),
    "flip_translate": ((lambda batch: batch, 0.25), (_mirrored, 0.25),
                       (lambda batch: _shifted(batch, -1), 0.125),
                       (lambda batch: _mirrored(_shifted(batch, -1)), 0.125),
                       (lambda batch: _shifted(batch, 1), 0.125),
                       (lambda batch: _mirrored(_shifted(batch, 1)), 0.125)),
}
TTA_MODES = tuple(TTA_VIEWS)


def predict_logits(model, images, mean, std, tta="none", batch_size=250):
    """Logits (N, classes) in float64: the weighted mean over the views of `tta` (TTA_VIEWS).
    The views of each batch go through the model together, image by image (all views of image 0,
    then of image 1, ...), so the output reshapes to (N, views, classes)."""
    if tta not in TTA_VIEWS:
        raise ValueError(f"unknown tta '{tta}', expected one of {TTA_MODES}")
    views = TTA_VIEWS[tta]

    def interleaved_views(batch):
        stacked = tf.stack([view(batch) for view, _ in views], axis=1)  # (B, views, H, W, C)
        return tf.reshape(stacked, tf.concat([[-1], tf.shape(batch)[1:]], axis=0))

    dataset = inference_dataset(images, mean, std, batch_size).map(
        interleaved_views, num_parallel_calls=tf.data.AUTOTUNE)
    logits = model.predict(dataset, verbose=0).astype(np.float64)
    weights = np.array([weight for _, weight in views])
    return np.einsum("nvk,v->nk", logits.reshape(len(images), len(views), -1), weights)
