"""The pieces that keep a run at the device's speed: whole training batches, callbacks Keras may
dispatch asynchronously, one prediction batch size and one pass for
six views and one; and what the run reports of itself (phases, the history CSV)."""
import csv
import io

import keras
import numpy as np
import pytest

from pyimagesearch import augment, callbacks, evaluation, phases
from pyimagesearch.batches import epoch_order, pad_to_whole_batches, padding_size
from pyimagesearch.recipes import RECIPES

pytestmark = pytest.mark.backend


def test_the_training_set_is_padded_to_whole_batches_with_copies_of_its_own_images():
    images = np.arange(1000, 1011)[:, None]  # 11 examples, each holding its own number
    targets = np.arange(11)[:, None] * 10
    padded = pad_to_whole_batches(images, targets, 4, seed=3)
    assert len(padded.images) == 12 and padded.steps == 3 and padded.batch_size == 4
    np.testing.assert_array_equal(padded.images[:11], images)  # every image, once, in order
    extra = padded.images[11:, 0] - 1000
    assert len(set(extra)) == 1 and 0 <= extra[0] < 11
    np.testing.assert_array_equal(padded.targets[11:, 0], extra * 10)  # its own target
    # 9 = 4 * 2 + 1 needs 3 copies, all different; a whole number of batches needs none
    copies = pad_to_whole_batches(images[:9], targets[:9], 4, seed=3).images[9:, 0]
    assert len(copies) == 3 == len(set(copies))
    assert len(pad_to_whole_batches(images[:8], targets[:8], 4, seed=3).images) == 8
    assert pad_to_whole_batches(images, targets, 4, seed=3).images[11:].tolist() == \
        padded.images[11:].tolist()  # the seed decides
    assert padding_size(45_000, 512) == 56
    with pytest.raises(ValueError, match="make no whole batch"):
        pad_to_whole_batches(images[:3], targets[:3], 4, seed=0)


def test_each_epoch_order_is_fixed_by_seed_and_epoch_and_a_stream_starts_at_any_epoch():
    images = np.arange(10)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    targets = np.arange(10, dtype=np.float32)[:, None]
    batches = pad_to_whole_batches(images, targets, 5, seed=4)
    whole = list(batches.stream(0, 3))
    assert len(whole) == 3 * batches.steps == 6
    seen = [np.concatenate([image[:, 0, 0, 0] for image, _ in whole[2 * e:2 * e + 2]])
            for e in range(3)]
    for epoch, order in enumerate(seen):  # every image once an epoch, in that epoch's order
        np.testing.assert_array_equal(order, epoch_order(10, 4, epoch))
        assert sorted(order) == list(range(10))
    assert len({tuple(order) for order in seen}) == 3  # a new order each epoch
    for (image, target), (again, again_target) in zip(whole[2:], batches.stream(1, 3)):
        np.testing.assert_array_equal(image, again)  # resumed at epoch 1: the same batches
        np.testing.assert_array_equal(target, again_target)
    np.testing.assert_array_equal(whole[1][1][:, 0], whole[1][0][:, 0, 0, 0])  # pairs kept
    laid_images, laid_targets = batches.laid_out(1, 3)
    np.testing.assert_array_equal(laid_images, np.concatenate([b[0] for b in whole[2:]]))
    np.testing.assert_array_equal(laid_targets, np.concatenate([b[1] for b in whole[2:]]))
    assert not np.array_equal(epoch_order(10, 5, 0), epoch_order(10, 4, 0))  # the seed decides


def default_run_callbacks(tmp_path, recipe):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    paths = {"backup": str(tmp_path / "backup"), "history_csv": str(tmp_path / "h.csv")}
    val = (np.zeros((4, 4), np.float32), np.zeros(4, int))
    fit_callbacks, _, _ = callbacks.training_callbacks(model, val, paths, {"seed": 1}, recipe,
                                                       steps_per_epoch=10,
                                                       predict_batch_size=4)
    return model, fit_callbacks


def hooks_batch_end(callback):
    return not (keras.src.utils.python_utils.is_default(callback.on_train_batch_end)
                and keras.src.utils.python_utils.is_default(callback.on_batch_end))


@pytest.mark.parametrize("recipe", ["fast", "tutorial"])
def test_training_callbacks_let_keras_dispatch_batch_ends_asynchronously(recipe, tmp_path):
    model, fit_callbacks = default_run_callbacks(tmp_path, RECIPES[recipe])
    assert any(isinstance(c, callbacks.Lookahead) for c in fit_callbacks) \
        == RECIPES[recipe]["lookahead"]
    assert [type(c).__name__ for c in fit_callbacks if hooks_batch_end(c)
            and not getattr(c, "async_safe", False)] == []
    callback_list = keras.callbacks.CallbackList(fit_callbacks, model=model)
    # TensorFlow's backend is not thread safe, so Keras never dispatches asynchronously there
    assert callback_list._async_train is keras.src.backend.IS_THREAD_SAFE


def test_the_dispatch_check_sees_a_per_step_hook(tmp_path):
    class PerStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    model, fit_callbacks = default_run_callbacks(tmp_path, RECIPES["fast"])
    assert hooks_batch_end(PerStep()) and not hooks_batch_end(fit_callbacks[0])
    callback_list = keras.callbacks.CallbackList(fit_callbacks + [PerStep()], model=model)
    assert callback_list._async_train is False


def tiny_image_model(seed=0):
    keras.utils.set_random_seed(seed)
    images = keras.Input((32, 32, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(images)
    x = keras.layers.Conv2D(4, 3, padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    return keras.Model(images, keras.layers.Dense(10)(x))


def test_one_view_metrics_come_from_the_six_view_pass():
    model = tiny_image_model()
    rng = np.random.default_rng(3)
    test = (rng.integers(0, 256, (23, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 23))
    val = (rng.integers(0, 256, (17, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 17))
    results, _ = evaluation.evaluate(model, test, val, "flip_translate", batch_size=8)
    # against separate predictions: one view alone, and the six views averaged by Keras
    one_view = evaluation.scaled_metrics(
        evaluation.predict_logits(model, test[0]), test[1],
        evaluation.predict_logits(model, val[0]), val[1])
    assert results["one_view"]["test_metrics"]["nll"] == pytest.approx(one_view[0]["nll"],
                                                                       rel=1e-5)
    assert results["one_view"]["temperature"] == pytest.approx(one_view[1], rel=1e-3)
    six = evaluation.predict_logits(model, test[0], "flip_translate")
    assert results["test_metrics"]["nll"] == pytest.approx(
        evaluation.scaled_metrics(six, test[1], six[:0], val[1][:0])[0]["nll"], rel=1e-5)
    bins = results["reliability_bins_temperature_scaled"]
    assert sum(bins["count"]) == 23 and bins != results["reliability_bins"]


def test_predictions_come_in_one_batch_shape():
    shapes = []

    class Recording(keras.Model):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def call(self, images):
            shapes.append(tuple(images.shape))
            return self.inner(images)

    model = tiny_image_model()
    images = np.random.default_rng(0).integers(0, 256, (21, 32, 32, 3), dtype=np.uint8)
    padded = evaluation.predict_padded(model, images, 8)
    np.testing.assert_allclose(padded, model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
    assert padded.shape == (21, 10)
    recording = Recording(model)
    evaluation.predict_padded(recording, images, 8)
    # every trace sees the one batch size (a partial batch would retrace: with its own size
    # under JAX, with an unknown one under TensorFlow)
    assert {shape[0] for shape in shapes} == {8}
    assert evaluation.prediction_batch_size(5000, 10000) == evaluation.PREDICT_BATCH_SIZE
    assert evaluation.prediction_batch_size(40, 30) == 40
    assert evaluation.prediction_batch_size(0, 30) == 30


def test_tta_per_view_logits_average_to_the_tta_logits():
    model = tiny_image_model()
    images = np.random.default_rng(1).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    per_view = augment.TestTimeAugmented(model, "flip_translate", per_view=True).predict(
        images, verbose=0)
    assert per_view.shape == (5, 6, 10)
    np.testing.assert_allclose(per_view[:, 0], model.predict(images, verbose=0), rtol=1e-5,
                               atol=1e-6)  # the first view is the image itself
    np.testing.assert_allclose(evaluation.average_views(per_view.astype(np.float64),
                                                        "flip_translate"),
                               evaluation.predict_logits(model, images, "flip_translate"),
                               rtol=1e-5, atol=1e-6)


def test_phases_split_the_fit_into_setup_first_and_later_epochs():
    timer = phases.Phases()
    with timer("load"):
        pass
    timer.seconds.update(load=1.5, build=2.0, fit=10.0, evaluation=3.0)
    timer.split_fit([{"seconds": 2.0}, {"seconds": 3.0}, {"seconds": 4.0}])
    reported = timer.as_json()
    assert list(reported) == ["load", "build", "fit_setup", "first_epoch", "later_epochs",
                              "evaluation", "other"]
    assert (reported["fit_setup"], reported["first_epoch"], reported["later_epochs"]) == \
        (1.0, 2.0, 7.0)
    assert phases.summary({"load": 1.4, "first_epoch": 20.6}) == "load 1 s, first epoch 21 s"


def test_history_csv_has_one_row_per_epoch_and_every_column():
    text = callbacks.history_csv([{"loss": 2.5, "accuracy": 0.25, "seconds": 3.0},
                                  {"loss": 1.5, "accuracy": 0.5, "val_loss": 1.75,
                                   "seconds": 2.0}])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "seconds", "val_loss"]
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert float(rows[1]["val_loss"]) == 1.75 and rows[0]["val_loss"] == ""
    assert float(rows[0]["loss"]) == 2.5
