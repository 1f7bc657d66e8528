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

The folder outlives training: it is removed (`remove`) only once the run's outputs are written
(writing.py), so a kill or a full disk while they are written costs no training; the rerun
restores the last epoch, trains nothing and writes them.
"""
import gc
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
from pyimagesearch.errors import BackupDamaged, UsageError, WriteFailed
from pyimagesearch.outputs import BACKUP_STATE_FILE as STATE_FILE, write_json

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
    """Backs up the weights, the optimizer's state and the history after each epoch and restores
    them when training begins (the run continues at the next epoch). It leaves the folder when
    training ends: the run removes it once its outputs are written (`remove`). `history` holds
    one {metric: value, "seconds": epoch time} dict per epoch, the restored ones included. Every
    process of a job restores; only the one that `writes` (the chief) saves. A save that fails
    (a full disk) is WriteFailed, one line saying which epoch the folder still holds.

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
            done = state["epoch"]
            going_on = (f"continuing with epoch {done + 1}" if done < self.params.get("epochs", 0)
                        else "training is complete, writing the outputs")
            print(f"resuming from {self.folder}: {done} epochs done, {going_on}",
                  file=self.stream or sys.stdout, flush=True)

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
        weights = f"epoch_{epochs_done:04d}.weights.h5"
        writing = os.path.join(self.folder, weights)
        temporary = carried = None
        try:
            os.makedirs(self.folder, exist_ok=True)
            # Keras wants the name to end in .weights.h5; the leading dot marks it temporary
            handle, temporary = tempfile.mkstemp(prefix=f".epoch_{epochs_done:04d}.",
                                                 suffix=".weights.h5", dir=self.folder)
            os.close(handle)
            self.model.save_weights(temporary, overwrite=True)
            os.replace(temporary, writing)
            if self.carried:
                carried = f"epoch_{epochs_done:04d}.callbacks.npz"
                writing = os.path.join(self.folder, carried)
                arrays = {f"{index}/{key}": value for index, callback in enumerate(self.carried)
                          for key, value in callback.state_arrays().items()}
                _save_arrays(writing, arrays)
            writing = os.path.join(self.folder, STATE_FILE)
            write_json(writing, {"config": self.run_config, "epoch": epochs_done,
                                 "weights": weights, "callbacks": carried,
                                 "history": self.history})
        except OSError as error:  # WriteFailed included: state.json still names whole files
            _release_failed_write(error, temporary)
            raise WriteFailed(writing, _plain_os_error(error),
                              self._after_failed_save(weights, carried)) from error
        finally:
            if temporary is not None and os.path.exists(temporary):
                os.remove(temporary)
        for name in os.listdir(self.folder):  # now unneeded: older files, killed saves' files
            if name not in (weights, carried) and _SAVED.fullmatch(name):
                os.remove(os.path.join(self.folder, name))

    def _after_failed_save(self, *new_files):
        """After a save that failed: delete its files that state.json does not name (on a full
        disk they hold space the user needs back) and say what a rerun resumes from."""
        try:
            state = read_state(self.folder)
        except BackupDamaged:  # not by this save, which never touches the files it names
            state = None
        named = (state["weights"], state.get("callbacks")) if state else ()
        for name in new_files:
            if name and name not in named and os.path.exists(os.path.join(self.folder, name)):
                os.remove(os.path.join(self.folder, name))
        if state is None:
            return "no epoch is backed up yet"
        return (f"{self.folder} still holds epoch {state['epoch']}: make room and run the same "
                "command again to resume from there")


def _plain_os_error(error):
    """The system's error alone: HDF5's message around it is long ("Can't synchronously write
    data (file write failed: time = ..., errno = 28, error message = 'No space left on device',
    buf = ..."), and the line that names the file should be short."""
    return OSError(error.errno, os.strerror(error.errno)) if error.errno else error


def _release_failed_write(error, temporary):
    """Close what a failed weights write left open, now and quietly. h5py leaves the file open;
    its objects, held by the frames of the error's traceback, close it when they are collected,
    which writes the metadata it still holds: on a full disk that fails again, prints tracebacks
    from h5py's destructors and crashes the process as it exits. Emptied first, the temporary
    has room for that last write; then the frames are cleared and the objects collected here,
    with any report of a second failure dropped: the first is reported already."""
    if temporary is not None and os.path.exists(temporary):
        os.truncate(temporary, 0)
    hooks = sys.unraisablehook, sys.excepthook
    sys.unraisablehook, sys.excepthook = (lambda unraisable: None), (lambda *exc_info: None)
    try:
        trace = error.__traceback__
        while trace is not None:
            frame = trace.tb_frame
            while frame is not None:  # with its callers, which Keras leaves out of tracebacks
                try:
                    frame.clear()
                except RuntimeError:  # still running: this one and its callers are live
                    break
                frame = frame.f_back
            trace = trace.tb_next
        gc.collect()
    finally:
        sys.unraisablehook, sys.excepthook = hooks


def remove(folder):
    """Delete the backup in `folder`, once the run it saved has written its outputs."""
    if os.path.isdir(folder):
        shutil.rmtree(folder)


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
