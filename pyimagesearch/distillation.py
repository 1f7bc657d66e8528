"""Knowledge distillation (Hinton, Vinyals & Dean 2015) from a saved teacher, as a Keras loss.

A student trains on

  (1 - λ) · CE(targets, student) + λ · T² · KL(softmax(teacher / T) ‖ softmax(student / T))

per example, where `targets` and CE are the method's (one-hot or smoothed labels, Keras'
`CategoricalCrossentropy` with its `label_smoothing`). The soft term's gradients shrink as 1/T²;
the factor T² keeps them the size of the hard term's at any temperature.

The teacher is frozen, so its logits are computed once, before training, by its saved inference
model on the training images (`teacher_logits`), and travel with the targets: each target row
is the method's K targets, then K values of the teacher (`distill`), and `DistillationLoss`
splits them. That is exact only if the student sees each training image as the teacher saw it,
i.e. with a recipe that does not augment; `config` refuses a teacher with one that does.

The teacher's values are its log-probabilities, the logits less their log-sum-exp: softmax at
any temperature cannot tell them from the logits, and they are <= 0. Keras' "accuracy" metric
takes the argmax of the whole target row, and the method's targets, whose largest entry is
positive, win it, so the training accuracy stays that of the labels.
"""
import contextlib
import json
import os
import random
import zipfile

import keras
import numpy as np
from keras import ops

from pyimagesearch.cifar10 import IMAGE_SHAPE, NUM_CLASSES
from pyimagesearch.errors import UsageError
from pyimagesearch.evaluation import PREDICT_BATCH_SIZE, predict_padded

# What keras.saving.load_model raises for a file that is not a loadable .keras model: not a
# zip, a zip without Keras' config, a config it cannot rebuild, weights that do not fit.
_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile)


def distillation_term(teacher_logits, student_logits, temperature):
    """T² · KL(softmax(teacher / T) ‖ softmax(student / T)) per example, (N, K) -> (N,), in
    float32 whatever the inputs' dtype; no gradient flows into the teacher. Zero, with zero
    gradient, where the student's logits equal the teacher's (up to a constant per row)."""
    teacher = ops.stop_gradient(ops.cast(teacher_logits, "float32")) / temperature
    student = ops.cast(student_logits, "float32") / temperature
    teacher_log_probabilities = ops.log_softmax(teacher, axis=-1)
    divergence = ops.sum(ops.exp(teacher_log_probabilities)
                         * (teacher_log_probabilities - ops.log_softmax(student, axis=-1)),
                         axis=-1)
    return float(temperature) ** 2 * divergence


@keras.saving.register_keras_serializable(package="pyimagesearch")
class DistillationLoss(keras.losses.Loss):
    """(1 - weight) · base_loss + weight · distillation_term at `temperature`, per example.

    y_true is (N, 2K): the base loss's targets, then the teacher's logits (or log-probabilities:
    `distill`); y_pred the student's logits (N, K). `base_loss` is a Keras loss on logits whose
    `call` gives per-example values (the method's `CategoricalCrossentropy(from_logits=True,
    label_smoothing=α)`); its reduction is this loss's unless `reduction` is given. With
    weight 0 this is the base loss exactly."""

    def __init__(self, base_loss, temperature, weight, name="distillation", reduction=None,
                 dtype=None):
        super().__init__(name=name,
                         reduction=base_loss.reduction if reduction is None else reduction,
                         dtype=dtype)
        self.base_loss, self.temperature, self.weight = base_loss, float(temperature), \
            float(weight)

    def call(self, y_true, y_pred):
        classes = y_pred.shape[-1]
        if y_true.shape[-1] != 2 * classes:
            raise ValueError(f"DistillationLoss needs targets of {2 * classes} columns (the "
                             f"{classes} targets, then the teacher's {classes} logits), got "
                             f"{y_true.shape[-1]}")
        targets, teacher = y_true[..., :classes], y_true[..., classes:]
        hard = ops.cast(self.base_loss.call(targets, y_pred), "float32")
        return (1.0 - self.weight) * hard \
            + self.weight * distillation_term(teacher, y_pred, self.temperature)

    def get_config(self):
        return {**super().get_config(), "base_loss": keras.losses.serialize(self.base_loss),
                "temperature": self.temperature, "weight": self.weight}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(keras.losses.deserialize(config.pop("base_loss")), **config)


def log_probabilities(logits):
    """numpy: log-softmax of (N, K) `logits`, computed in float64, as float32."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))).astype(np.float32)


def distill(targets, loss, teacher_logits, temperature, weight):
    """(targets, loss) of a method -> (targets, loss) that distil from the teacher too: the
    targets (N, K) with the teacher's log-probabilities appended, (N, 2K) float32, and a
    DistillationLoss around `loss`. `teacher_logits` (N, K) are the teacher's on the same
    training images, in the same order."""
    targets = np.asarray(targets, np.float32)
    teacher_logits = np.asarray(teacher_logits)
    if targets.ndim != 2 or teacher_logits.shape != targets.shape:
        raise ValueError(f"the teacher's logits {teacher_logits.shape} must match the targets "
                         f"{targets.shape}")
    # appended after the targets, which batches.pad_to_whole_batches and every epoch's order
    # then carry along row for row
    return (np.concatenate([targets, log_probabilities(teacher_logits)], axis=1),
            DistillationLoss(loss, temperature, weight))


def load_teacher(path):
    """The teacher's saved inference model, computing in float32: uint8 images (N, 32, 32, 3)
    in, logits (N, 10) out, as both scripts save it. UsageError, one line, for a file that
    does not load as a Keras model (loaded in Keras' safe mode: no code from the file runs) or
    is not such a model."""
    try:
        teacher = keras.saving.load_model(path, compile=False, safe_mode=True)
    except _LOAD_ERRORS as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UsageError(f"--teacher {path}: not a loadable Keras model ({reason})") from None
    if not isinstance(teacher, keras.Model) or len(teacher.inputs or ()) != 1 \
            or len(teacher.outputs or ()) != 1:
        raise UsageError(f"--teacher {path}: not a model with one input and one output")
    images, logits = teacher.inputs[0], teacher.outputs[0]
    if tuple(images.shape[1:]) != IMAGE_SHAPE or images.dtype != "uint8" \
            or tuple(logits.shape[1:]) != (NUM_CLASSES,):
        raise UsageError(f"--teacher {path}: takes {images.dtype} {tuple(images.shape[1:])} "
                         f"and gives {tuple(logits.shape[1:])}; a teacher takes uint8 images "
                         f"{IMAGE_SHAPE} and gives {NUM_CLASSES} logits (the <stem>.keras a run "
                         "of either script wrote)")
    return _in_float32(teacher)


def _in_float32(model):
    """`model` with every layer computing in float32: a teacher trained under a bfloat16 policy
    keeps that policy in its file, and its soft targets would carry bfloat16's three digits. A
    copy with the same weights, or `model` itself if it is float32 throughout."""
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in model._flatten_layers()
           if not isinstance(layer, keras.layers.InputLayer)):
        return model

    def float32_layer(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=float32_layer, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


@contextlib.contextmanager
def _random_state_kept():
    """Python's and numpy's global random states as they were before: building a model draws
    its initialisers' seeds from Python's (Keras' `make_default_seed`), and the student, built
    after its teacher is loaded, must start from the weights it would have without one."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def teacher_logits(path, images, batch_size=PREDICT_BATCH_SIZE):
    """The logits (N, 10), float32, of the teacher saved at `path` on uint8 `images`, one view,
    predicted in batches of `batch_size` (the last one padded: one program). Loaded and run
    outside any Keras distribution, so that every process predicts its own images alone, and
    leaving the global random state as it was. UsageError for a bad teacher file or logits
    that are not finite."""
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        with _random_state_kept():
            teacher = load_teacher(path)
            logits = predict_padded(teacher, images, max(1, min(batch_size, len(images))))
    finally:
        keras.distribution.set_distribution(previous)
    logits = keras.ops.convert_to_numpy(logits).astype(np.float32)
    if not np.isfinite(logits).all():
        raise UsageError(f"--teacher {path}: its logits on the training images are not all "
                         "finite (a diverged teacher?)")
    return logits


def teacher_record(path):
    """What the run's JSON says of its teacher: {'path', 'json', 'method', 'smoothing',
    'recipe', 'seed', 'train_images', 'test_accuracy', 'one_view_accuracy'}, read from the
    teacher run's `<stem>.json` beside its `<stem>.keras`; every entry but 'path' is None where
    that JSON is missing, unreadable or lacks it."""
    json_path = os.path.splitext(path)[0] + ".json"
    record = {"path": path, "json": None, "method": None, "smoothing": None, "recipe": None,
              "seed": None, "train_images": None, "test_accuracy": None,
              "one_view_accuracy": None}
    try:
        with open(json_path, encoding="utf-8") as handle:
            run = json.load(handle)
    except (OSError, ValueError):
        return record
    if not isinstance(run, dict):
        return record

    def entry(*keys, kind=(int, float)):
        value = run
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value if isinstance(value, kind) and not isinstance(value, bool) else None

    record.update(json=json_path, method=entry("method", kind=str),
                  smoothing=entry("args", "smoothing"), recipe=entry("args", "recipe", kind=str),
                  seed=entry("args", "seed"), train_images=entry("data", "train_images"),
                  test_accuracy=entry("test_accuracy"),
                  one_view_accuracy=entry("one_view", "test_metrics", "accuracy"))
    if record["one_view_accuracy"] is None and entry("recipe", "tta", kind=str) == "none":
        record["one_view_accuracy"] = record["test_accuracy"]  # it scored one view only
    return record
