"""Keras callbacks of the training core: divergence stop, hard-label validation, lookahead, the
history as CSV and a time estimate, with the per-epoch backup of backup.py. Their order in
`model.fit` matters (see `training_callbacks`).

None of them reads a tensor back to the host every batch, nor hooks a batch's end: Keras then
dispatches batch ends asynchronously (where the backend allows) and the host queues steps ahead
of the device. The divergence check and validation run once per epoch; lookahead counts steps
in Python and updates its weights on the device, from a batch's beginning.
"""
import math
import sys
import time

import keras
import numpy as np
from keras import ops

from pyimagesearch import backup, calibration, hardware, signals
from pyimagesearch.evaluation import predict_padded
from pyimagesearch.outputs import write_text


class DivergenceGuard(keras.callbacks.Callback):
    """Stop after an epoch whose mean training loss is NaN or infinite: a single non-finite batch
    loss makes the epoch's mean non-finite, so nothing is missed, and the check costs one read an
    epoch instead of one a batch. Must come before the callbacks that use the weights."""

    def __init__(self):
        super().__init__()
        self.diverged_in_epoch = None  # 0-based

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_in_epoch = epoch
            self.model.stop_training = True


class HardLabelValidation(keras.callbacks.Callback):
    """Adds val_loss (cross-entropy) and val_accuracy on hard labels to each epoch's logs, for both
    methods. Keras' own validation would apply the training loss, whose smoothing differs.
    `predictor` predicts with the trained weights: the inference model, which shares them
    (model.build_models), or a `processes.LocalMirror` of it."""

    def __init__(self, predictor, images, labels, guard, batch_size):
        super().__init__()
        self.predictor, self.images, self.labels = predictor, images, labels
        self.guard, self.batch_size = guard, batch_size

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or len(self.labels) == 0 or self.guard.diverged_in_epoch is not None:
            return
        logits = predict_padded(self.predictor, self.images, self.batch_size).astype(np.float64)
        logs["val_loss"] = calibration.negative_log_likelihood(logits, self.labels)
        logs["val_accuracy"] = float((logits.argmax(axis=1) == self.labels).mean())


def lookahead_decays(total_steps, every=5, final=0.95 ** 5):
    """airbench's lookahead schedule: the decay used at each sync step (every `every` optimizer
    steps, 1-based), rising as the cube of training progress from 0 to `final`."""
    steps = np.arange(every, total_steps + 1, every)
    return steps, final * (steps / total_steps) ** 3


def _copies(weights):
    """Separate buffers with the values of `weights` (see `_lookahead_update`)."""
    return [ops.copy(weight) for weight in weights]


def _lookahead_update(slow, fast, decay):
    """(new slow, new fast) weights: both slow + (1 - decay) * (fast - slow), for each pair of
    tensors. Returned twice so that the two are separate buffers: JAX's training step donates
    (frees) the buffers of the model's variables, which must not free the slow copy."""
    moved = [s + ops.cast(1 - decay, s.dtype) * (f - s) for s, f in zip(slow, fast)]
    return moved, [ops.copy(weight) for weight in moved]


class Lookahead(keras.callbacks.Callback):
    """Lookahead with an averaged slow copy (Zhang et al. 2019, as airbench uses it): every
    `every` steps the slow weights move toward the fast ones by (1 - decay) and the fast weights
    are reset to them; at the end the model keeps the slow weights. The decay rises over training
    (`lookahead_decays`), so early steps are plain SGD and late ones are averaged over more
    steps, which smooths out the noise of the last high-learning-rate steps. Batch-norm
    statistics are averaged too (every floating-point weight).

    Steps are counted here, from the epoch and batch numbers, so no step counter is read from the
    device; the update is one compiled function over all weights, on the device. A sync due
    after step s runs before step s + 1 begins (or at the end of the epoch, before validation):
    the same weights at the same point as right after step s, but from a batch-begin hook, so
    that Keras keeps dispatching batch ends asynchronously and never waits for the device per
    step. With `steps_per_execution` k > 1 Keras calls back every k steps, and a sync happens
    at the first callback at or after each multiple of `every`. The slow copy is taken at the
    first step; the backup carries it (`state_arrays`), so a resumed run continues the same
    average."""

    def __init__(self, total_steps, steps_per_epoch, every=5):
        super().__init__()
        steps, decays = lookahead_decays(total_steps, every)
        self.decays = dict(zip(steps.tolist(), decays.tolist()))
        self.steps_per_epoch, self.every = steps_per_epoch, every
        self.slow, self.synced_until = None, 0
        self.restored = None  # slow weights from a backup, placed on the device at the first step
        # each a single compiled program over all weights, not one small program per weight
        self.update = hardware.compile_function(_lookahead_update)
        self.copy = hardware.compile_function(_copies)

    def _weights(self):
        # on JAX, `self.model` first writes the training state into the variables
        return [weight for weight in self.model.weights if "float" in str(weight.dtype)]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start_step = epoch * self.steps_per_epoch
        self.synced_until = max(self.synced_until, self.epoch_start_step)

    def state_arrays(self):
        """The slow weights, for the backup ({} before the first step)."""
        if self.slow is None:
            return {}
        return {f"slow_{index:03d}": hardware.to_numpy(value)
                for index, value in enumerate(self.slow)}

    def restore_state_arrays(self, arrays):
        if arrays:
            self.restored = [arrays[f"slow_{index:03d}"] for index in range(len(arrays))]

    def on_train_batch_begin(self, batch, logs=None):
        if self.slow is None:
            weights = [weight.value for weight in self._weights()]
            if self.restored is not None:
                if len(self.restored) != len(weights):
                    raise ValueError(f"the backup holds {len(self.restored)} slow weights for "
                                     f"a model with {len(weights)}")
                self.slow = [hardware.placed_like(array, weight)
                             for array, weight in zip(self.restored, weights)]
            else:
                self.slow = self.copy(weights)
        self._sync_if_due(self.epoch_start_step + batch)  # optimizer steps taken so far

    def on_epoch_end(self, epoch, logs=None):
        self._sync_if_due((epoch + 1) * self.steps_per_epoch)

    def _sync_if_due(self, step):
        due = step - step % self.every
        if due <= self.synced_until or due not in self.decays or self.slow is None:
            return
        self.synced_until = due
        weights = self._weights()
        # the decay as a tensor, so that tf.function traces the update once, not once a value
        decay = ops.convert_to_tensor(self.decays[due], dtype="float32")
        self.slow, fast = self.update(self.slow, [weight.value for weight in weights], decay)
        for weight, value in zip(weights, fast):
            weight.assign(value)

    def on_train_end(self, logs=None):
        if self.slow is not None:
            slow = self.copy(self.slow)
        elif self.restored is not None:
            # resumed after the last epoch (the outputs were not all written): no step was
            # taken, and the backup's slow weights are the ones the run ends with
            slow = self.restored
        else:  # no step was taken
            return
        for weight, value in zip(self._weights(), slow, strict=True):
            weight.assign(value)


class StopCheck(keras.callbacks.Callback):
    """Raises a stop signal that a finaliser swallowed (signals.py) at the next batch's start,
    or once the epoch's backup is written: last in the list, so that its epoch end comes after
    the backup's."""

    def on_train_batch_begin(self, batch, logs=None):
        signals.raise_if_stopped()

    def on_epoch_end(self, epoch, logs=None):
        signals.raise_if_stopped()


def remaining_seconds(epoch_seconds, epochs_left):
    """Seconds left, from the epochs timed so far. The first epoch of a run includes compilation
    and warm-up, so once there is a second one it is left out."""
    if not epoch_seconds:
        return None
    steady = epoch_seconds[1:] or epoch_seconds
    return epochs_left * float(np.median(steady))


class TimeEstimate(keras.callbacks.Callback):
    """After each epoch, one line: the epoch's time and the estimated time to the last epoch
    (Keras' progress bar estimates only the epoch in progress)."""

    def __init__(self, epochs, stream=None):
        super().__init__()
        self.epochs, self.stream = epochs, stream
        self.epoch_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self.started)
        left = remaining_seconds(self.epoch_seconds, self.epochs - epoch - 1)
        finish = time.strftime("%H:%M", time.localtime(time.time() + left))
        print(f"epoch {epoch + 1}/{self.epochs} took {self.epoch_seconds[-1]:.0f} s; "
              f"training ends in about {left / 60:.1f} min (around {finish})",
              file=self.stream or sys.stdout, flush=True)


class HistoryCSV(keras.callbacks.Callback):
    """`<stem>_history.csv`, one row per completed epoch, rewritten whole from `history` after
    each epoch: it can be followed while a run trains, and a resumed run's file has every epoch
    once (Keras' CSVLogger, appending, repeats an epoch that was trained again after a kill)."""

    def __init__(self, path, history):
        super().__init__()
        self.path, self.history = path, history

    def on_epoch_end(self, epoch, logs=None):
        write_text(self.path, history_csv(self.history.history))


def history_csv(history):
    """CSV text of per-epoch records: an `epoch` column (1-based), then every key in the order
    first seen; a value an epoch lacks is left empty."""
    columns = []
    for record in history:
        columns += [key for key in record if key not in columns]
    lines = [",".join(["epoch", *columns])]
    for number, record in enumerate(history, start=1):
        lines.append(",".join([str(number), *(repr(float(record[key])) if key in record else ""
                                               for key in columns)]))
    return "\n".join(lines) + "\n"


def training_callbacks(predictor, val, paths, identity, recipe, steps_per_epoch,
                       predict_batch_size, writes=True, tensorboard=None):
    """(callbacks for model.fit, the divergence guard, the backup, which holds the history). The
    guard comes first, so that nothing runs on diverged weights; lookahead before validation, so
    that an epoch's last sync is in the weights validation sees; validation before the backup,
    so its val_* metrics are in the history it records and in what Keras' progress bar prints. `predictor` validates (see
    HardLabelValidation); only the process that `writes` saves the backup, the CSV and the
    time estimate. None of these callbacks hooks a batch's end, so Keras dispatches those
    asynchronously wherever the backend allows."""
    guard = DivergenceGuard()
    fit_callbacks = [guard]
    if recipe["lookahead"]:
        fit_callbacks.append(Lookahead(steps_per_epoch * recipe["epochs"], steps_per_epoch))
    # the backup carries lookahead's slow weights, so that a resumed run continues its average
    history = backup.EpochBackup(paths["backup"], identity, writes=writes,
                                 carried=fit_callbacks[1:])
    fit_callbacks += [HardLabelValidation(predictor, *val, guard, predict_batch_size), history]
    if writes:
        fit_callbacks += [HistoryCSV(paths["history_csv"], history),
                          TimeEstimate(recipe["epochs"])]
        if tensorboard:
            # config.check has made sure the tensorboard package is there
            fit_callbacks.append(keras.callbacks.TensorBoard(log_dir=tensorboard))
    fit_callbacks.append(StopCheck())
    return fit_callbacks, guard, history
