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
                                         tta="none")
        logs["val_loss"] = calibration.negative_log_likelihood(logits, self.labels)
        logs["val_accuracy"] = float((logits.argmax(axis=1) == self.labels).mean())


def lookahead_decays(total_steps, every=5, final=0.95 ** 5):
    """airbench's lookahead schedule: the decay used at each sync step (every `every` optimizer
    steps, 1-based), rising as the cube of training progress from 0 to `final`."""
    steps = np.arange(every, total_steps + 1, every)
    return steps, final * (steps / total_steps) ** 3


class Lookahead(keras.callbacks.Callback):
    """Lookahead with an averaged slow copy (Zhang et al. 2019, as airbench uses it): every
    `every` steps the slow weights move toward the fast ones by (1 - decay) and the fast weights
    are reset to them; at the end the model keeps the slow weights. The decay rises over training
    (`lookahead_decays`), so early steps are plain SGD and late ones are averaged over more
    steps, which smooths out the noise of the last high-learning-rate steps. Batch-norm
    statistics are averaged too. The slow copy is not backed up: a resumed run restarts it from
    the restored weights."""

    def __init__(self, total_steps, every=5):
        super().__init__()
        steps, decays = lookahead_decays(total_steps, every)
        self.decay_at = dict(zip(steps.tolist(), decays.tolist()))
        self.slow = None

    def on_train_begin(self, logs=None):  # after BackupAndRestore has restored the weights
        self.slow = [variable.numpy() for variable in self.model.weights]

    def on_train_batch_end(self, batch, logs=None):
        decay = self.decay_at.get(int(self.model.optimizer.iterations.numpy()))
        if decay is None:
            return
        for variable, slow in zip(self.model.weights, self.slow):
            slow += (1 - decay) * (variable.numpy() - slow)
            variable.assign(slow)

    def on_train_end(self, logs=None):
        for variable, slow in zip(self.model.weights, self.slow):
            variable.assign(slow)


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


def training_callbacks(val_images, val_labels, mean, std, backup_folder, run_config,
                       lookahead_steps=None):
    """(callbacks for model.fit, the divergence guard, the history). Validation comes first so
    its val_* metrics are in the logs that the history records and Keras' progress bar prints;
    lookahead (over `lookahead_steps` total steps, if given) after the backup restores weights."""
    guard = DivergenceGuard()
    history = ResumableHistory(backup_folder, run_config)
    backup = keras.callbacks.BackupAndRestore(backup_folder, delete_checkpoint=True)
    validation = HardLabelValidation(val_images, val_labels, mean, std, guard)
    fit_callbacks = [validation, guard, history, backup]
    if lookahead_steps:
        fit_callbacks.append(Lookahead(lookahead_steps))
    return fit_callbacks, guard, history
