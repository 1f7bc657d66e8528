"""The resume backup of a run: after each epoch, the weights (the optimizer's state with them)
and the history so far, in a folder of its own, written so that a kill at any instant leaves the
last complete backup readable. Keras' BackupAndRestore rewrites one weights file in place, so a
kill while it writes leaves a truncated file that the next run cannot load.

The folder holds `epoch_<NNNN>.weights.h5` (the model's weights, its augmentation layer's random
state and the optimizer's state), `epoch_<NNNN>.callbacks.npz` (the state of callbacks that carry
some, such as lookahead's slow weights) and `state.json`, which names them:
{"config": the run's settings, "epoch": completed epochs, "weights": file name, "callbacks": file
name, "history": [...]}. Each save writes the new files under temporary names and renames them
into place, then replaces state.json, and only then deletes older files: state.json always names
whole files. With the batch order a function of the epoch (batches.py), that is everything a
run's future depends on: a resumed run ends as the uninterrupted one would have.
"""
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
import zipfile

import h5py
import keras
import numpy as np

from pyimagesearch import hardware
from pyimagesearch.errors import BackupDamaged, UsageError
from pyimagesearch.outputs import write_json

STATE_FILE = "state.json"
STATE_KEYS = ("config", "epoch", "weights", "history")
# what a save writes: weights files, and the temporaries of a save that was killed
_SAVED = re.compile(r"(epoch_\d+\.(weights\.h5|callbacks\.npz)"
                    r"|\.epoch_\d+\..+\.(weights\.h5|callbacks\.npz)|\.state\.json\..+)")


def _damaged(folder, fault):
    return BackupDamaged(f"{folder}: the backup cannot be resumed: {fault}; delete {folder} "
                         "to start afresh")


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(":")


def read_state(folder):
    """The state of the backup in `folder`, or None if there is none. Raises BackupDamaged (one
    line naming the folder) if it cannot be resumed; never changes the folder."""
    path = os.path.join(folder, STATE_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError:  # UnicodeDecodeError is one too
        raise _damaged(folder, f"{STATE_FILE} is not JSON") from None
    except OSError as error:
        raise _damaged(folder, f"{STATE_FILE} cannot be read ({error.strerror})") from None
    if not isinstance(state, dict):
        raise _damaged(folder, f"{STATE_FILE} is not a JSON object")
    missing = [key for key in STATE_KEYS if key not in state]
    if missing:
        raise _damaged(folder, f"{STATE_FILE} lacks {', '.join(missing)}")
    epoch, weights, history = state["epoch"], state["weights"], state["history"]
    if not isinstance(epoch, int) or epoch < 1:
        raise _damaged(folder, f"{STATE_FILE} has epoch {epoch!r}, not a count of epochs")
    if not isinstance(history, list) or len(history) < epoch:
        raise _damaged(folder, f"{STATE_FILE} lacks the history of its {epoch} epochs")
    if not isinstance(weights, str) or os.path.basename(weights) != weights or not weights:
        raise _damaged(folder, f"{STATE_FILE} names no weights file in the folder")
    weights_path = os.path.join(folder, weights)
    if not os.path.isfile(weights_path):
        raise _damaged(folder, f"{STATE_FILE} names {weights}, which is missing")
    try:  # cheap: HDF5 checks the file's recorded length on opening, so a truncation shows
        with h5py.File(weights_path, "r"):
            pass
    except OSError as error:
        raise _damaged(folder, f"{weights} is damaged ({_first_line(error)})") from None
    carried = state.get("callbacks")
    if carried is not None:
        if not isinstance(carried, str) or os.path.basename(carried) != carried or not carried:
            raise _damaged(folder, f"{STATE_FILE} names no callbacks file in the folder")
        if not os.path.isfile(os.path.join(folder, carried)):
            raise _damaged(folder, f"{STATE_FILE} names {carried}, which is missing")
    return state


def _read_carried(folder, name):
    """{key: array} of the callbacks file `name` in `folder`; BackupDamaged if unreadable."""
    try:
        with np.load(os.path.join(folder, name), allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise _damaged(folder, f"{name} is damaged ({_first_line(error)})") from None


def saved_run_config(folder):
    """The settings of the interrupted run backed up in `folder`, or None if there is none."""
    state = read_state(folder)
    return None if state is None else state["config"]


def saved_epochs(folder):
    """How many epochs the interrupted run backed up in `folder` completed; -1 if there is none."""
    state = read_state(folder)
    return -1 if state is None else state["epoch"]


class EpochBackup(keras.callbacks.Callback):
    """Backs up the weights, the optimizer's state and the history after each epoch, restores
    them when training begins (the run continues at the next epoch) and deletes the folder when
    training ends, a finished run leaving no backup (a run killed or interrupted never ends
    training). `history` holds one {metric: value, "seconds": epoch time} dict per epoch, the
    restored ones included. Every process of a job restores; only the one that `writes` (the
    chief) saves and deletes.

    `carried`: callbacks with state of their own that the run's future depends on; each has
    `state_arrays()` ({name: numpy array}) and `restore_state_arrays(arrays)`, and comes before
    this one in `model.fit`'s list, so that what is saved after an epoch includes its end.

    It has no per-batch methods, so Keras may run the batch-end callbacks of others without
    waiting for the device at each step; `async_safe` says the same to Keras."""

    async_safe = True

    def __init__(self, folder, run_config, writes=True, carried=(), stream=None):
        super().__init__()
        self.folder, self.run_config, self.writes = folder, run_config, writes
        self.carried, self.stream = list(carried), stream
        self.history = []

    def on_train_begin(self, logs=None):
        state = read_state(self.folder)
        if state is None:
            self.history = []
            return
        if not self.model.built:
            raise ValueError("the model must be built before a backup can be restored into it")
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # so that its state is loaded too
        try:
            with warnings.catch_warnings():
                # Keras only warns when the saved optimizer state does not fit the optimizer,
                # and goes on without it (fresh momentum and step count): make that an error
                warnings.filterwarnings("error", "Skipping variable loading", UserWarning)
                self.model.load_weights(os.path.join(self.folder, state["weights"]))
        except (OSError, ValueError, UserWarning) as error:
            raise _damaged(self.folder, f"{state['weights']} cannot be loaded into this model "
                                        f"({_first_line(error)})") from None
        arrays = _read_carried(self.folder, state["callbacks"]) if state.get("callbacks") \
            else {}
        for index, callback in enumerate(self.carried):
            prefix = f"{index}/"
            callback.restore_state_arrays({key[len(prefix):]: value for key, value
                                           in arrays.items() if key.startswith(prefix)})
        self.model._initial_epoch = state["epoch"]  # how Keras' fit is told where to start
        self.history = state["history"][:state["epoch"]]
        if self.writes:
            print(f"resuming from {self.folder}: {state['epoch']} epochs done, continuing with "
                  f"epoch {state['epoch'] + 1}", file=self.stream or sys.stdout, flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        record = {key: float(value) for key, value in (logs or {}).items()}
        record["seconds"] = time.perf_counter() - self.epoch_started
        self.history.append(record)
        if self.writes:
            # Saving builds a throwaway optimizer; under a multi-process distribution creating a
            # variable is a collective step that the processes not saving would never join.
            with hardware.no_distribution():
                self._save(epoch + 1)

    def _save(self, epochs_done):
        os.makedirs(self.folder, exist_ok=True)
        weights = f"epoch_{epochs_done:04d}.weights.h5"
        # Keras wants the name to end in .weights.h5; the leading dot marks it temporary
        handle, temporary = tempfile.mkstemp(prefix=f".epoch_{epochs_done:04d}.",
                                             suffix=".weights.h5", dir=self.folder)
        os.close(handle)
        try:
            self.model.save_weights(temporary, overwrite=True)
            os.replace(temporary, os.path.join(self.folder, weights))
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        carried = None
        if self.carried:
            carried = f"epoch_{epochs_done:04d}.callbacks.npz"
            arrays = {f"{index}/{key}": value for index, callback in enumerate(self.carried)
                      for key, value in callback.state_arrays().items()}
            _save_arrays(os.path.join(self.folder, carried), arrays)
        write_json(os.path.join(self.folder, STATE_FILE),
                   {"config": self.run_config, "epoch": epochs_done, "weights": weights,
                    "callbacks": carried, "history": self.history})
        for name in os.listdir(self.folder):  # now unneeded: older files, killed saves' files
            if name not in (weights, carried) and _SAVED.fullmatch(name):
                os.remove(os.path.join(self.folder, name))

    def on_train_end(self, logs=None):
        if self.writes and os.path.isdir(self.folder):
            shutil.rmtree(self.folder)


def _save_arrays(path, arrays):
    """`arrays` as an .npz at `path`, written under a temporary name and renamed into place."""
    folder, name = os.path.split(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{name[:-len('callbacks.npz')]}",
                                         suffix=".callbacks.npz", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def check_matches(backup_folder, identity):
    """How many epochs the interrupted run in `backup_folder` completed (-1: none). A backup
    made with other settings must not be resumed silently: UsageError naming what differs;
    a damaged one is BackupDamaged."""
    saved_config = saved_run_config(backup_folder)
    if saved_config is not None and saved_config != identity:
        changed = sorted(key for key in set(saved_config) | set(identity)
                         if saved_config.get(key) != identity.get(key))
        raise UsageError(f"{backup_folder} holds an interrupted run with different settings "
                         f"({', '.join(changed)}); rerun that command to resume it, or delete "
                         "the folder to start afresh")
    return saved_epochs(backup_folder)
