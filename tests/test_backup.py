"""The per-epoch backup: resuming restores the weights, the optimizer's state and the history;
a kill during a save, a truncated or foreign weights file and a broken state.json."""
import json
import os
import shutil

import keras
import numpy as np
import pytest
from keras.src import backend as keras_backend
from keras.src.utils import python_utils

from pyimagesearch import backup
from pyimagesearch.backup import EpochBackup, read_state, saved_epochs, saved_run_config
from pyimagesearch.callbacks import Lookahead
from pyimagesearch.errors import BackupDamaged

pytestmark = pytest.mark.backend

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 3)).astype(np.float32)
Y = RNG.normal(size=(8, 2)).astype(np.float32)
CONFIG = {"method": "loss", "smoothing": 0.1}


def make_model(seed=0, hidden=()):
    """Dense(2) on 3 inputs (after Dense layers of `hidden` units); SGD with momentum and a
    learning rate that drops after step 4, so that a resumed run matches an uninterrupted one
    only if momentum and step count are restored."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,))] + [
        keras.layers.Dense(units, dtype="float32") for units in (*hidden, 2)])
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([4], [0.1, 0.01])
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9), loss="mse")
    return model


def fit(model, callbacks, epochs=3):
    """Two steps an epoch."""
    return model.fit(X, Y, batch_size=4, epochs=epochs, shuffle=False, verbose=0,
                     callbacks=callbacks)


def state_of(model):
    """(weights, optimizer variables) as numpy arrays."""
    return ([np.array(weight) for weight in model.get_weights()],
            [np.array(keras.ops.convert_to_numpy(variable.value))
             for variable in model.optimizer.variables])


def assert_same_state(actual, expected):
    for got, want in zip(actual[0] + actual[1], expected[0] + expected[1], strict=True):
        np.testing.assert_array_equal(got, want)


class Killed(Exception):
    """Stands for the process being killed: it ends fit without on_train_end."""


class Snapshots(keras.callbacks.Callback):
    """The model's state when training begins and at each epoch's end; placed after the backup,
    it sees the restored state at the beginning."""

    def on_train_begin(self, logs=None):
        self.at_begin = state_of(self.model)
        self.at_epoch_end = {}

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end[epoch + 1] = state_of(self.model)


class KillAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epochs_done):
        super().__init__()
        self.epochs_done = epochs_done

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs_done:
            raise Killed()


def listing(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A backup of 2 of 3 epochs (killed after epoch 2's save), with the model's state at each
    epoch end and the backup's history then."""
    folder = tmp_path_factory.mktemp("interrupted") / "run_backup"
    snapshots, saver = Snapshots(), EpochBackup(str(folder), CONFIG)
    with pytest.raises(Killed):
        fit(make_model(), [saver, snapshots, KillAfterEpoch(2)])
    return folder, snapshots.at_epoch_end, [dict(record) for record in saver.history]


@pytest.fixture
def backup_copy(interrupted, tmp_path):
    folder, at_epoch_end, history = interrupted
    copy = tmp_path / "run_backup"
    shutil.copytree(folder, copy)
    return copy, at_epoch_end, history


def test_killed_run_leaves_its_last_epoch_backed_up(interrupted):
    folder, _, history = interrupted
    assert sorted(os.listdir(folder)) == ["epoch_0002.weights.h5", "state.json"]
    state = json.loads((folder / "state.json").read_text())
    assert state == {"config": CONFIG, "epoch": 2, "weights": "epoch_0002.weights.h5",
                     "callbacks": None, "history": history}
    assert [sorted(record) for record in history] == [["loss", "seconds"]] * 2
    assert saved_run_config(str(folder)) == CONFIG and saved_epochs(str(folder)) == 2


def test_no_backup(tmp_path):
    assert read_state(str(tmp_path / "none")) is None
    assert saved_run_config(str(tmp_path / "none")) is None
    assert saved_epochs(str(tmp_path / "none")) == -1
    assert read_state(str(tmp_path)) is None  # a folder without state.json: a killed first save


def test_resume_restores_weights_optimizer_and_history_and_matches_an_unbroken_run(backup_copy):
    folder, at_epoch_end, saved_history = backup_copy
    snapshots, resumer = Snapshots(), EpochBackup(str(folder), CONFIG)
    model = make_model(seed=1)  # other initial weights: all must come from the backup
    resumed = fit(model, [resumer, snapshots])
    assert_same_state(snapshots.at_begin, at_epoch_end[2])
    names = [variable.name for variable in model.optimizer.variables]
    assert snapshots.at_begin[1][names.index("iteration")] == 4  # steps taken
    assert list(snapshots.at_epoch_end) == [3]  # only the third epoch was run
    assert len(resumed.history["loss"]) == 1
    assert len(resumer.history) == 3  # each epoch once
    assert resumer.history[:2] == saved_history
    assert resumer.history[2]["loss"] == pytest.approx(resumed.history["loss"][0])
    # kept when training ends: writing.py removes it once the run's outputs are written
    assert saved_epochs(str(folder)) == 3

    unbroken = make_model()
    fit(unbroken, [])
    for got, want in zip(model.get_weights(), unbroken.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_truncated_weights_are_reported_in_one_line_and_left_alone(backup_copy):
    folder = backup_copy[0]
    weights = folder / "epoch_0002.weights.h5"
    weights.write_bytes(weights.read_bytes()[:weights.stat().st_size // 2])
    before = listing(folder)
    for attempt in (lambda: read_state(str(folder)),
                    lambda: fit(make_model(), [EpochBackup(str(folder), CONFIG)])):
        with pytest.raises(BackupDamaged) as damaged:
            attempt()
        message = str(damaged.value)
        assert "\n" not in message and message.startswith(f"{folder}: ")
        assert "epoch_0002.weights.h5 is damaged" in message
        assert message.endswith(f"delete {folder} to start afresh")
    assert listing(folder) == before


def other_optimizer():
    model = make_model()
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")  # more state than SGD's
    return model


@pytest.mark.parametrize("make", [lambda: make_model(hidden=(4,)), other_optimizer],
                         ids=["other layers", "other optimizer"])
def test_weights_that_do_not_fit_the_model_are_reported_in_one_line(make, backup_copy):
    folder = backup_copy[0]
    with pytest.raises(BackupDamaged) as damaged:
        fit(make(), [EpochBackup(str(folder), CONFIG)])
    message = str(damaged.value)
    assert "\n" not in message and message.startswith(f"{folder}: ")
    assert "epoch_0002.weights.h5 cannot be loaded" in message
    assert message.endswith(f"delete {folder} to start afresh")
    assert sorted(os.listdir(folder)) == ["epoch_0002.weights.h5", "state.json"]


@pytest.mark.parametrize("damage, fault", [
    (lambda folder: (folder / "state.json").write_text('{"config": {}, "epoch": 2, "wei'),
     "state.json is not JSON"),
    (lambda folder: (folder / "state.json").write_bytes(b"\xff\xfe\x00"),
     "state.json is not JSON"),
    (lambda folder: (folder / "state.json").write_text('{"config": {}, "epoch": 2}'),
     "state.json lacks weights, history"),
    (lambda folder: (folder / "epoch_0002.weights.h5").unlink(),
     "state.json names epoch_0002.weights.h5, which is missing"),
], ids=["cut short", "not text", "keys missing", "weights missing"])
def test_broken_state_is_reported_in_one_line_and_left_alone(damage, fault, backup_copy):
    folder = backup_copy[0]
    damage(folder)
    before = listing(folder)
    with pytest.raises(BackupDamaged) as damaged:
        saved_epochs(str(folder))
    assert str(damaged.value) == (f"{folder}: the backup cannot be resumed: {fault}; "
                                  f"delete {folder} to start afresh")
    assert listing(folder) == before


def kill_when_writing_weights(monkeypatch, model, epochs_done):
    """The save of epoch `epochs_done` dies with half its weights written, as on a kill, and
    leaves its temporary files behind."""
    save_weights = model.save_weights

    def dying_save(path, **kwargs):
        if os.path.basename(path).startswith(f".epoch_{epochs_done:04d}."):
            save_weights(path, **kwargs)
            with open(path, "r+b") as handle:
                handle.truncate(os.path.getsize(path) // 2)
            shutil.copy(path, path + ".left.weights.h5")  # survives the save's own clean-up
            raise Killed()
        save_weights(path, **kwargs)

    monkeypatch.setattr(model, "save_weights", dying_save)


def kill_before_state(monkeypatch, model, epochs_done):
    """The save of epoch `epochs_done` dies after its weights are in place, before state.json."""
    write_json = backup.write_json

    def dying_write(path, data):
        if data["epoch"] == epochs_done:
            raise Killed()
        write_json(path, data)

    monkeypatch.setattr(backup, "write_json", dying_write)


@pytest.mark.parametrize("kill", [kill_when_writing_weights, kill_before_state],
                         ids=["writing weights", "before state.json"])
def test_kill_during_a_save_keeps_the_previous_backup(kill, tmp_path, monkeypatch):
    folder = tmp_path / "run_backup"
    snapshots, model = Snapshots(), make_model()
    kill(monkeypatch, model, 3)
    with pytest.raises(Killed):
        fit(model, [EpochBackup(str(folder), CONFIG), snapshots], epochs=4)
    monkeypatch.undo()
    # besides the backup of epoch 2: the killed save's temporary file, or its complete weights
    assert {"epoch_0002.weights.h5", "state.json"} < set(os.listdir(folder))
    assert len(os.listdir(folder)) == 3
    assert read_state(str(folder))["weights"] == "epoch_0002.weights.h5"
    assert saved_epochs(str(folder)) == 2

    resumed_snapshots, resumer = Snapshots(), EpochBackup(str(folder), CONFIG)
    with pytest.raises(Killed):
        fit(make_model(seed=1), [resumer, resumed_snapshots, KillAfterEpoch(3)], epochs=4)
    assert_same_state(resumed_snapshots.at_begin, snapshots.at_epoch_end[2])
    assert len(resumer.history) == 3
    # the next save cleaned up the killed one's files and the older weights
    assert sorted(os.listdir(folder)) == ["epoch_0003.weights.h5", "state.json"]
    assert saved_epochs(str(folder)) == 3


def test_a_process_that_does_not_write_restores_but_never_saves_or_deletes(backup_copy):
    folder, at_epoch_end, saved_history = backup_copy
    before = listing(folder)
    snapshots, reader = Snapshots(), EpochBackup(str(folder), CONFIG, writes=False)
    fit(make_model(seed=1), [reader, snapshots])
    assert_same_state(snapshots.at_begin, at_epoch_end[2])
    assert len(reader.history) == 3 and reader.history[:2] == saved_history
    assert listing(folder) == before

    fresh = folder.parent / "fresh_backup"
    fit(make_model(), [EpochBackup(str(fresh), CONFIG, writes=False)], epochs=1)
    assert not fresh.exists()


def test_batch_end_callbacks_stay_asynchronous_where_the_backend_allows(tmp_path):
    for method in (EpochBackup.on_train_batch_end, EpochBackup.on_batch_end):
        assert python_utils.is_default(method)  # not overridden
    callbacks = keras.callbacks.CallbackList([EpochBackup(str(tmp_path), CONFIG)],
                                             model=make_model())
    # Keras dispatches batch ends asynchronously only on a thread-safe backend (JAX, not TF)
    assert callbacks._async_train is keras_backend.IS_THREAD_SAFE


def lookahead():
    """Syncs after steps 3 and 6 of 3 two-step epochs: after epochs 1 and 2 the slow weights
    differ from the model's, so a resumed run needs them from the backup."""
    return Lookahead(total_steps=6, steps_per_epoch=2, every=3)


def killed_lookahead_backup(folder, carried=True):
    first = lookahead()
    with pytest.raises(Killed):
        fit(make_model(), [first, EpochBackup(folder, CONFIG, carried=[first] if carried
                                              else []), KillAfterEpoch(2)])


def test_lookahead_slow_weights_are_carried_so_a_resumed_run_matches_an_unbroken_one(
        tmp_path, capsys):
    unbroken = make_model()
    fit(unbroken, [lookahead()])
    for carried in (True, False):
        folder = str(tmp_path / f"carried_{carried}")
        killed_lookahead_backup(folder, carried)
        assert ("epoch_0002.callbacks.npz" in os.listdir(folder)) is carried
        resumed, callback = make_model(), lookahead()
        fit(resumed, [callback, EpochBackup(folder, CONFIG, carried=[callback] if carried
                                            else [])])
        assert f"resuming from {folder}: 2 epochs done, continuing with epoch 3" in \
            capsys.readouterr().out
        same = all(np.array_equal(got, want) for got, want in
                   zip(resumed.get_weights(), unbroken.get_weights(), strict=True))
        assert same is carried  # restarting the average from the restored weights differs


def test_a_damaged_callbacks_file_is_one_line_and_left_alone(tmp_path):
    folder = tmp_path / "run_backup"
    killed_lookahead_backup(str(folder))
    (folder / "epoch_0002.callbacks.npz").write_bytes(b"PK\x03\x04 not a zip")
    before = listing(folder)
    callback = lookahead()
    with pytest.raises(BackupDamaged) as error:
        fit(make_model(), [callback, EpochBackup(str(folder), CONFIG, carried=[callback])])
    assert "epoch_0002.callbacks.npz is damaged" in str(error.value)
    assert len(str(error.value).splitlines()) == 1 and listing(folder) == before
    os.remove(folder / "epoch_0002.callbacks.npz")
    with pytest.raises(BackupDamaged, match="names epoch_0002.callbacks.npz, which is missing"):
        read_state(str(folder))


def test_a_run_resumed_after_its_last_epoch_trains_nothing_and_ends_as_the_unbroken_one(
        tmp_path, capsys):
    """Killed after the last epoch's backup (while its outputs were written): the rerun restores
    it, takes no step and ends with lookahead's slow weights, as the unbroken run did. Syncing
    every 4 of 6 steps leaves the last two out of the average, so the model's own weights at the
    end differ from the slow ones, which only lookahead's train end puts in place."""
    def unsynced_at_the_end():
        return Lookahead(total_steps=6, steps_per_epoch=2, every=4)

    unbroken = make_model()
    fit(unbroken, [unsynced_at_the_end()])
    folder = str(tmp_path / "run_backup")
    first = unsynced_at_the_end()
    with pytest.raises(Killed):
        fit(make_model(), [first, EpochBackup(folder, CONFIG, carried=[first]),
                           KillAfterEpoch(3)])
    capsys.readouterr()
    resumed, callback, snapshots = make_model(seed=1), unsynced_at_the_end(), Snapshots()
    fit(resumed, [callback, EpochBackup(folder, CONFIG, carried=[callback]), snapshots])
    assert capsys.readouterr().out.splitlines() == [
        f"resuming from {folder}: 3 epochs done, training is complete, writing the outputs"]
    assert snapshots.at_epoch_end == {}  # no epoch trained
    assert not all(np.array_equal(got, want) for got, want in
                   zip(snapshots.at_begin[0], unbroken.get_weights(), strict=True))
    for got, want in zip(resumed.get_weights(), unbroken.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert saved_epochs(folder) == 3  # until the outputs are written
