"""Keras callbacks of the training core: hard-label validation, divergence stop, and a history
that survives interruption. Their order in `model.fit` matters (see `training_callbacks`)."""
import json
import os
import time

import keras
import numpy as np

from pyimagesearch import calibration, pipeline
from pyimagesearch.outputs import write_json

HISTORY_FILE = "history.json"


class DivergenceGuard(keras.callbacks.Callback):
    """Stop at the first non-finite training loss (Keras' TerminateOnNaN, remembering where)."""

    def __init__(self):
        super().__init__()
        self.diverged_at = None  # batch index within the epoch it stopped in

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if self.diverged_at is None and loss is not None and not np.isfinite(float(loss)):
            self.diverged_at = batch
            self.model.stop_training = True


class HardLabelValidation(keras.callbacks.Callback):
    """Adds val_loss (cross-entropy) and val_accuracy on hard labels to each epoch's logs, for both
    methods. Keras' own validation would apply the training loss, whose smoothing differs."""

    def __init__(self, images, labels, mean, std, guard):
        super().__init__()
        self.images, self.labels, self.mean, self.std, self.guard = images, labels, mean, std, guard

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or len(self.labels) == 0 or self.guard.diverged_at is not None:
            return
        logits = pipeline.predict_logits(self.model, self.images, self.mean, self.std,
                                         flip_tta=False)
        logs["val_loss"] = calibration.negative_log_likelihood(logits, self.labels)
        logs["val_accuracy"] = float((logits.argmax(axis=1) == self.labels).mean())


class ResumableHistory(keras.callbacks.Callback):
    """The per-epoch history, kept in the backup folder so that a resumed run's history has every
    epoch exactly once. It must run before BackupAndRestore saves, so it never lags the weights."""

    def __init__(self, backup_folder, run_config):
        super().__init__()
        self.path = os.path.join(backup_folder, HISTORY_FILE)
        self.run_config = run_config
        self.history = []  # one {metric: value} dict per epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()
        # BackupAndRestore resumed at `epoch`: take the history of the epochs before it, dropping
        # one recorded after the last backup (a kill between this callback and the backup).
        if epoch > 0 and not self.history and os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as handle:
                self.history = json.load(handle)["history"][:epoch]

    def on_epoch_end(self, epoch, logs=None):
        record = {key: float(value) for key, value in (logs or {}).items()}
        record["seconds"] = time.perf_counter() - self.epoch_started  # training + validation
        self.history.append(record)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        write_json(self.path, {"config": self.run_config, "history": self.history})


def saved_run_config(backup_folder):
    """The settings of an interrupted run in `backup_folder`, or None if there is none."""
    path = os.path.join(backup_folder, HISTORY_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle).get("config")


def training_callbacks(val_images, val_labels, mean, std, backup_folder, run_config):
    """(callbacks for model.fit, the divergence guard, the history). Validation comes first so
    its val_* metrics are in the logs that the history records and Keras' progress bar prints."""
    guard = DivergenceGuard()
    history = ResumableHistory(backup_folder, run_config)
    backup = keras.callbacks.BackupAndRestore(backup_folder, delete_checkpoint=True)
    validation = HardLabelValidation(val_images, val_labels, mean, std, guard)
    return [validation, guard, history, backup], guard, history
