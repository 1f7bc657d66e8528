import numpy as np
import pytest
import tensorflow as tf

from pyimagesearch import pipeline


def test_channel_stats_and_normalize():
    images = np.zeros((2, 2, 2, 3), np.uint8)
    images[0, ..., 0] = 10
    images[1, ..., 0] = 30  # channel 0: mean 20, std 10; channels 1, 2: all zero
    images[..., 1] = 4
    mean, std = pipeline.channel_stats(images)
    np.testing.assert_allclose(mean, [20, 4, 0])
    np.testing.assert_allclose(std, [10, 0, 0])
    normalized = pipeline.normalize(images, mean, np.array([10, 1, 1], np.float32)).numpy()
    np.testing.assert_allclose(normalized[0, 0, 0], [-1, 0, 0])
    np.testing.assert_allclose(normalized[1, 1, 1], [1, 0, 0])


def candidate_views(image, max_shift):
    """Every crop of the reflect-padded image, and its mirror: what augmentation may return."""
    padded = np.pad(image, [(max_shift, max_shift), (max_shift, max_shift), (0, 0)], "reflect")
    size = image.shape[0]
    for dy in range(2 * max_shift + 1):
        for dx in range(2 * max_shift + 1):
            crop = padded[dy:dy + size, dx:dx + size]
            yield (dy, dx, False), crop
            yield (dy, dx, True), crop[:, ::-1]


def test_translate_and_flip_returns_shifted_or_mirrored_crops():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(64, 8, 8, 3)).astype(np.float32)
    augmented = pipeline.translate_and_flip(tf.constant(images), tf.constant([1, 2]), 2).numpy()
    seen = set()
    for image, result in zip(images, augmented):
        matches = [view for view, crop in candidate_views(image, 2) if np.array_equal(crop, result)]
        assert matches, "output is not a shifted/flipped crop of its input"
        seen.add(matches[0])
    flips = {view[2] for view in seen}
    offsets = {view[:2] for view in seen}
    assert flips == {False, True} and len(offsets) > 10  # both flips, many shifts in 64 images
    # the same seed gives the same batch; another seed another
    again = pipeline.translate_and_flip(tf.constant(images), tf.constant([1, 2]), 2).numpy()
    other = pipeline.translate_and_flip(tf.constant(images), tf.constant([3, 4]), 2).numpy()
    np.testing.assert_array_equal(augmented, again)
    assert not np.array_equal(augmented, other)


def test_training_dataset_keeps_image_target_pairs_and_covers_each_image_once():
    count = 10
    images = np.repeat(np.arange(count, dtype=np.uint8)[:, None, None, None] * 20, 4, axis=1)
    images = np.repeat(np.repeat(images, 4, axis=2), 3, axis=3)  # image i is constant 20 * i
    targets = np.eye(count, dtype=np.float32)
    mean, std = np.zeros(3, np.float32), np.ones(3, np.float32)
    dataset = pipeline.training_dataset(images, targets, 4, mean, std, max_shift=1, seed=0)
    orders = []
    for _ in range(2):
        indices = []
        for batch_images, batch_targets in dataset:
            index = batch_targets.numpy().argmax(axis=1)
            # a constant image stays constant under shifts and flips: its value names its index
            np.testing.assert_array_equal(batch_images.numpy()[:, 0, 0, 0], index * 20)
            indices.extend(index.tolist())
        assert sorted(indices) == list(range(count))
        orders.append(indices)
    assert orders[0] != orders[1]  # reshuffled every epoch


def test_predict_logits_test_time_augmentation_against_numpy_views():
    # A linear model over the raw pixels, so every view's logits are view.flatten() @ weights.
    import keras

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(5, 6, 6, 3)).astype(np.uint8)
    weights = rng.normal(size=(6 * 6 * 3, 4)).astype(np.float32)
    model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(4, use_bias=False)])
    model.layers[-1].set_weights([weights])
    mean, std = np.array([100, 120, 140], np.float32), np.array([50, 60, 70], np.float32)

    def logits_of(views):
        return views.reshape(len(views), -1) @ weights.astype(np.float64)

    normalized = (images.astype(np.float64) - mean) / std
    mirrored = normalized[:, :, ::-1]
    padded = np.pad(normalized, [(0, 0), (1, 1), (1, 1), (0, 0)], "reflect")
    up_left, down_right = padded[:, :6, :6], padded[:, 2:, 2:]  # moved by -1 and +1 pixel

    def flip_mean(views):
        return (logits_of(views) + logits_of(views[:, :, ::-1])) / 2

    expected = {
        "none": logits_of(normalized),
        "flip": (logits_of(normalized) + logits_of(mirrored)) / 2,
        "flip_translate": flip_mean(normalized) / 2
        + (flip_mean(up_left) + flip_mean(down_right)) / 4,
    }
    for mode, want in expected.items():
        for batch_size in (250, 2):  # one batch; batches of 2, 2 and 1 views-stacked
            got = pipeline.predict_logits(model, images, mean, std, mode, batch_size)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3, err_msg=mode)
    assert not np.allclose(expected["flip"], expected["flip_translate"], atol=1e-2)
    with pytest.raises(ValueError, match="unknown tta"):
        pipeline.predict_logits(model, images, mean, std, "crops")
