"""Augmentation and test-time views (keras.ops) against numpy references."""
import keras
import numpy as np
import pytest

from pyimagesearch import augment, model
from pyimagesearch.evaluation import predict_logits

pytestmark = pytest.mark.backend


def test_channel_stats_and_normalize():
    images = np.zeros((2, 2, 2, 3), np.uint8)
    images[0, ..., 0] = 10
    images[1, ..., 0] = 30  # channel 0: mean 20, std 10; channels 1, 2: all zero
    images[..., 1] = 4
    mean, std = model.channel_stats(images)
    np.testing.assert_allclose(mean, [20, 4, 0])
    np.testing.assert_allclose(std, [10, 0, 0])
    normalized = model.normalize(images, mean, np.array([10, 1, 1], np.float32))
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


def test_shift_and_flip_returns_shifted_or_mirrored_crops_of_each_image():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(320, 8, 8, 3)).astype(np.float32)
    augmented = keras.ops.convert_to_numpy(augment.shift_and_flip(images, 7, 2))
    seen = []
    for image, result in zip(images, augmented):
        matches = [view for view, crop in candidate_views(image, 2) if np.array_equal(crop, result)]
        assert matches, "output is not a shifted/flipped crop of its own input image"
        seen.append(matches[0])
    flips = [view[2] for view in seen]
    offsets = {view[:2] for view in seen}
    # both flips about equally often (binomial sd 9), and every one of the 25 offsets
    assert 120 < sum(flips) < 200 and len(offsets) == 25
    again = keras.ops.convert_to_numpy(augment.shift_and_flip(images, 7, 2))
    other = keras.ops.convert_to_numpy(augment.shift_and_flip(images, 8, 2))
    np.testing.assert_array_equal(augmented, again)  # the same seed gives the same batch
    assert not np.array_equal(augmented, other)


def test_the_layer_augments_only_when_training_and_differently_each_batch():
    images = np.random.default_rng(1).normal(size=(16, 8, 8, 3)).astype(np.float32)
    layer = augment.RandomShiftAndFlip(2, seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images)), images)
    first = keras.ops.convert_to_numpy(layer(images, training=True))
    second = keras.ops.convert_to_numpy(layer(images, training=True))
    assert not np.array_equal(first, images) and not np.array_equal(first, second)


def test_test_time_views_against_numpy():
    # A linear model over the standardised pixels, so every view's logits are view.flatten() @ W.
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(5, 6, 6, 3)).astype(np.uint8)
    weights = rng.normal(size=(6 * 6 * 3, 4)).astype(np.float32)
    mean, std = np.array([100, 120, 140], np.float32), np.array([50, 60, 70], np.float32)
    inputs = keras.Input((6, 6, 3), dtype="uint8")
    standardized = keras.layers.Normalization(mean=mean, variance=std ** 2)(inputs)
    dense = keras.layers.Dense(4, use_bias=False)
    linear = keras.Model(inputs, dense(keras.layers.Flatten()(standardized)))
    dense.set_weights([weights])

    def logits_of(views):
        return views.reshape(len(views), -1) @ weights.astype(np.float64)

    normalized = (images.astype(np.float64) - mean) / std
    padded = np.pad(normalized, [(0, 0), (1, 1), (1, 1), (0, 0)], "reflect")
    up_left, down_right = padded[:, :6, :6], padded[:, 2:, 2:]  # moved by -1 and +1 pixel

    def flip_mean(views):
        return (logits_of(views) + logits_of(views[:, :, ::-1])) / 2

    expected = {
        "none": logits_of(normalized),
        "flip": flip_mean(normalized),
        "flip_translate": flip_mean(normalized) / 2
        + (flip_mean(up_left) + flip_mean(down_right)) / 4,
    }
    for mode, want in expected.items():
        for batch_size in (250, 2):  # one batch; batches of 2, 2 and 1 images
            got = predict_logits(linear, images, mode, batch_size)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3, err_msg=mode)
    assert not np.allclose(expected["flip"], expected["flip_translate"], atol=1e-2)
    with pytest.raises(ValueError, match="unknown tta"):
        predict_logits(linear, images, "crops")


def test_image_parity_and_alternate_flips_against_numpy():
    images = np.random.default_rng(4).integers(0, 256, (64, 4, 4, 3)).astype(np.uint8)
    parity = images.astype(np.int64).sum(axis=(1, 2, 3)) % 2
    assert 0 < parity.sum() < 64  # both parities occur, so the test below can tell them apart
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augment.image_parity(images)),
                                  parity)
    for epoch in range(4):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(augment.alternate_flips(images, epoch)),
            parity != epoch % 2)


def seen_flipped(image, result):
    """Whether `result` (max_shift 0) is `image` mirrored (True) or as it is (False)."""
    if np.array_equal(result, image):
        return False
    assert np.array_equal(result, image[:, ::-1]), "neither the image nor its mirror"
    return True


def alternate_layer_epochs(layer, images, batches, epochs):
    """[epoch][image] flipped? over `epochs` epochs of `batches` batches each (in order)."""
    seen = []
    for _ in range(epochs):
        flipped = []
        for batch in np.array_split(images, batches):
            result = keras.ops.convert_to_numpy(layer(batch, training=True))
            flipped += [seen_flipped(image, out) for image, out in zip(batch, result)]
        seen.append(np.array(flipped))
    return seen


def test_alternating_flips_show_every_image_both_ways_in_two_consecutive_epochs():
    images = np.random.default_rng(5).integers(0, 256, (30, 5, 5, 3)).astype(np.uint8)
    layer = augment.RandomShiftAndFlip(0, flip="alternate", steps_per_epoch=3, seed=0)
    seen = alternate_layer_epochs(layer, images, 3, 4)  # batches of 10, 3 steps an epoch
    assert int(keras.ops.convert_to_numpy(layer.steps_taken)) == 12
    parity = images.astype(np.int64).sum(axis=(1, 2, 3)) % 2
    for epoch in range(4):
        np.testing.assert_array_equal(seen[epoch], parity != epoch % 2)
        assert 0 < seen[epoch].sum() < 30  # some mirrored, not all
    for first, second in zip(seen, seen[1:]):
        np.testing.assert_array_equal(first, ~second)  # once each way
    # not training: the identity, and the epoch counter stays
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images)), images)
    assert int(keras.ops.convert_to_numpy(layer.steps_taken)) == 12


def test_alternating_flips_with_shifts_mirror_the_same_images():
    images = np.random.default_rng(6).integers(0, 256, (20, 6, 6, 3)).astype(np.uint8)
    layer = augment.RandomShiftAndFlip(2, flip="alternate", steps_per_epoch=1, seed=1)
    parity = images.astype(np.int64).sum(axis=(1, 2, 3)) % 2
    assert 0 < parity.sum() < 20
    for epoch in range(2):
        result = keras.ops.convert_to_numpy(layer(images, training=True))
        for image, out, mirrored in zip(images, result, parity != epoch % 2):
            flips = {view[2] for view, crop in candidate_views(image, 2)
                     if np.array_equal(crop, out)}
            assert flips == {bool(mirrored)}


def test_alternating_flips_resume_from_the_saved_step_and_config():
    images = np.random.default_rng(7).integers(0, 256, (8, 4, 4, 3)).astype(np.uint8)
    layer = augment.RandomShiftAndFlip(0, flip="alternate", steps_per_epoch=2, seed=0)
    first_epoch = alternate_layer_epochs(layer, images, 2, 1)[0]  # two steps: epoch 1 next
    config = layer.get_config()
    assert config["flip"] == "alternate" and config["steps_per_epoch"] == 2
    resumed = augment.RandomShiftAndFlip.from_config(config)
    resumed.set_weights(layer.get_weights())  # as a backup restores the training model
    np.testing.assert_array_equal(alternate_layer_epochs(resumed, images, 2, 1)[0],
                                  ~first_epoch)
    fresh = augment.RandomShiftAndFlip.from_config(config)  # without the weights: epoch 0
    np.testing.assert_array_equal(alternate_layer_epochs(fresh, images, 2, 1)[0], first_epoch)


def test_flip_modes_are_checked():
    with pytest.raises(ValueError, match="unknown flip"):
        augment.RandomShiftAndFlip(2, flip="sometimes")
    layer = augment.RandomShiftAndFlip(2, flip="alternate")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        layer(np.zeros((2, 4, 4, 3), np.uint8), training=True)
    assert augment.RandomShiftAndFlip(2, flip=True).steps_taken is None  # no counter needed


def test_saved_weights_carry_the_random_state_so_a_restored_layer_draws_the_same_shifts(
        tmp_path):
    images = np.random.default_rng(2).integers(0, 256, (8, 8, 8, 3)).astype(np.float32)

    def model_of(seed):
        inputs = keras.Input((8, 8, 3))
        return keras.Model(inputs, augment.RandomShiftAndFlip(2, seed=seed)(inputs))

    def augmented(model):
        return keras.ops.convert_to_numpy(model(images, training=True))

    trained = model_of(seed=3)
    augmented(trained)  # one batch drawn: the generator has moved on
    trained.save_weights(tmp_path / "state.weights.h5")
    expected = augmented(trained)  # what the next batch gets
    restored = model_of(seed=99)  # another seed: only the saved state can make it agree
    restored.load_weights(tmp_path / "state.weights.h5")
    np.testing.assert_array_equal(augmented(restored), expected)
    assert not np.array_equal(augmented(model_of(seed=3)), expected)  # a fresh start differs
