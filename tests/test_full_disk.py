"""A full disk: a run whose output folder fills up mid-run ends with one line naming what could
not be written (exit code 1, no traceback), its backup holding the last complete epoch, and the
same command, once there is room again, resumes and finishes.

Two disks: a real small tmpfs, where this process may mount one (root on Linux), so that the
failures are the libraries' own (h5py's, matplotlib's, zipfile's) in the middle of a file; and,
everywhere, an injected one on which, once it is full, every file the run creates in its
folder fails with ENOSPC. On the tmpfs the run that fills it in training is the real command in
a process of its own: h5py's trouble with a file it failed to write (tracebacks from its
destructors, a crash as the process exits) shows only there."""
import errno
import json
import os
import subprocess
import sys
import tempfile

import pytest

import label_smoothing_loss
from conftest import tiny_argv
from pyimagesearch import callbacks, figures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUTS = ("run.json", "run_report.txt", "run.png", "run_calibration.png", "run.keras",
           "run_history.csv")


class InjectedDisk:
    """The output folder of a machine whose disk fills at `fill()`: from then on creating a
    file there fails as on a full disk (the run creates every file it writes under a temporary
    name first)."""

    def __init__(self, folder, monkeypatch):
        self.folder, self.full = str(folder), False
        real_mkstemp = tempfile.mkstemp

        def mkstemp(suffix=None, prefix=None, dir=None, text=False):
            if self.full and os.path.abspath(dir or "").startswith(self.folder):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_mkstemp(suffix, prefix, dir, text)
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)

    def fill(self):
        self.full = True

    def free(self):
        self.full = False


class Tmpfs:
    """A tmpfs mounted on `folder`, filled at `fill()` by a file that takes its last byte."""

    def __init__(self, folder):
        self.folder, self.filler = str(folder), os.path.join(str(folder), "filler")
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs",
                                  self.folder], capture_output=True)
        if mounted.returncode:
            pytest.skip("cannot mount a tmpfs here (needs root)")

    def resize(self, megabytes):
        subprocess.run(["mount", "-o", f"remount,size={megabytes}m", self.folder], check=True)

    def fill(self):
        with open(self.filler, "wb", buffering=0) as handle:
            chunk = 1 << 20
            while chunk:
                try:
                    handle.write(b"\0" * chunk)
                except OSError as error:
                    assert error.errno == errno.ENOSPC
                    chunk //= 2

    def free(self):
        if os.path.exists(self.filler):
            os.remove(self.filler)
        self.resize(96)

    def unmount(self):
        subprocess.run(["umount", self.folder], check=True)


@pytest.fixture(params=["injected", "tmpfs"])
def disk(request, tmp_path, monkeypatch):
    folder = tmp_path / "disk"
    folder.mkdir()
    if request.param == "injected":
        yield InjectedDisk(folder, monkeypatch)
        return
    tmpfs = Tmpfs(folder)
    try:
        yield tmpfs
    finally:
        tmpfs.unmount()


def run(tiny_cifar, disk, capsys):
    """(exit code, stderr lines, stdout) of a two-epoch run writing into `disk`'s folder."""
    code = label_smoothing_loss.main(tiny_argv(tiny_cifar, os.path.join(disk.folder, "run.png"),
                                               "--epochs", "2"))
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines(), captured.out


def run_process(tiny_cifar, disk):
    """(exit code, stderr lines) of the same run as the command, in a fresh process."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.run(
        [sys.executable, os.path.join(ROOT, "label_smoothing_loss.py"),
         *tiny_argv(tiny_cifar, os.path.join(disk.folder, "run.png"), "--epochs", "2")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return process.returncode, process.stderr.strip().splitlines()


def backed_up(disk):
    with open(os.path.join(disk.folder, "run_backup", "state.json"), encoding="utf-8") as handle:
        return json.load(handle)["epoch"]


def full_in_training(backup, unwritten):
    """The one line of a run whose save of epoch 2 found the disk full at `unwritten`."""
    return (f"label_smoothing_loss.py: error: cannot write {os.path.join(backup, unwritten)}: "
            f"No space left on device; {backup} still holds epoch 1: make room and run the same "
            "command again to resume from there")


def assert_resumes_from_epoch_1_and_finishes(tiny_cifar, disk, capsys):
    code, err, out = run(tiny_cifar, disk, capsys)
    assert code == 0, err
    backup = os.path.join(disk.folder, "run_backup")
    assert f"resuming from {backup}: 1 epochs done, continuing with epoch 2" in out.splitlines()
    assert_finished(disk)


def assert_finished(disk):
    for name in OUTPUTS:
        assert os.path.getsize(os.path.join(disk.folder, name)) > 0, name
    left = [name for name in os.listdir(disk.folder) if name not in OUTPUTS + ("filler",)]
    assert left == []  # no backup, lock or temporary


def test_a_disk_full_during_training_keeps_the_last_epoch_and_the_rerun_resumes(
        tiny_cifar, disk, monkeypatch, capsys):
    if isinstance(disk, Tmpfs):
        disk.resize(32)  # room for epoch 1's backup, not for epoch 2's beside it
        code, err = run_process(tiny_cifar, disk)
        assert not [line for line in err if "Traceback" in line or "Exception" in line], err
        err = [line for line in err if line.startswith("label_smoothing_loss.py")]
    else:
        def fill_after_the_first_epoch(self, epoch, logs=None):
            real_csv_end(self, epoch, logs)
            if epoch == 0:  # epoch 1's backup and CSV are written; the next write fails
                disk.fill()
        real_csv_end = callbacks.HistoryCSV.on_epoch_end
        monkeypatch.setattr(callbacks.HistoryCSV, "on_epoch_end", fill_after_the_first_epoch)
        code, err, _ = run(tiny_cifar, disk, capsys)
        monkeypatch.setattr(callbacks.HistoryCSV, "on_epoch_end", real_csv_end)
    backup = os.path.join(disk.folder, "run_backup")
    assert code == 1, err
    assert err == [full_in_training(backup, "epoch_0002.weights.h5")]
    assert backed_up(disk) == 1
    assert not [name for name in os.listdir(backup) if name.startswith(".")]
    assert not os.path.exists(os.path.join(disk.folder, "run.lock"))

    disk.free()
    assert_resumes_from_epoch_1_and_finishes(tiny_cifar, disk, capsys)
    with open(os.path.join(disk.folder, "run.json"), encoding="utf-8") as handle:
        assert len(json.load(handle)["history"]["loss"]) == 2


def test_a_disk_full_while_the_outputs_are_written_keeps_the_backup_and_the_rerun_writes_them(
        tiny_cifar, disk, monkeypatch, capsys):
    real_plot_history = figures.plot_history

    def fill_then_plot(path, result):
        disk.fill()  # after the JSON and the report
        real_plot_history(path, result)
    monkeypatch.setattr(figures, "plot_history", fill_then_plot)
    code, err, _ = run(tiny_cifar, disk, capsys)
    assert code == 1
    folder = disk.folder
    unwritten = [os.path.join(folder, name) for name in ("run.png", "run_calibration.png",
                                                         "run.keras")]
    assert err[-1] == (f"label_smoothing_loss.py: error: 3 output(s) could not be written: "
                       f"{', '.join(unwritten)}; {os.path.join(folder, 'run_backup')} is kept: "
                       "run the same command again to write them without training again")
    # one line for each file, the JSON's rewrite with the writing's time among them
    assert sorted(err[:-1]) == sorted(f"label_smoothing_loss.py: error: cannot write {path}: "
                                      "No space left on device"
                                      for path in unwritten + [os.path.join(folder, "run.json")])
    assert backed_up(disk) == 2
    with open(os.path.join(folder, "run.json"), encoding="utf-8") as handle:
        first = json.load(handle)  # written before the disk filled

    disk.free()
    monkeypatch.setattr(figures, "plot_history", real_plot_history)
    code, err, out = run(tiny_cifar, disk, capsys)
    assert code == 0, err
    assert (f"resuming from {os.path.join(folder, 'run_backup')}: 2 epochs done, training is "
            "complete, writing the outputs") in out.splitlines()
    assert "Epoch " not in out  # nothing trained again
    assert_finished(disk)
    with open(os.path.join(folder, "run.json"), encoding="utf-8") as handle:
        again = json.load(handle)
    for key in ("test_metrics", "test_metrics_temperature_scaled", "temperature", "history"):
        assert again[key] == first[key], key


def test_a_save_cut_after_its_weights_deletes_them_and_the_rerun_resumes_from_the_last_epoch(
        tiny_cifar, tmp_path, monkeypatch, capsys):
    """The disk fills between epoch 2's weights, renamed into place, and the rest of its save:
    those weights, which state.json does not name, are deleted (on a full disk they hold space
    the user needs back), and epoch 1 stays the backup."""
    import keras

    folder = tmp_path / "disk"
    folder.mkdir()
    disk = InjectedDisk(folder, monkeypatch)
    real_save_weights = keras.Model.save_weights

    def save_then_fill(self, filepath, *args, **kwargs):
        real_save_weights(self, filepath, *args, **kwargs)
        if os.path.basename(filepath).startswith(".epoch_0002."):
            disk.fill()
    monkeypatch.setattr(keras.Model, "save_weights", save_then_fill)
    code, err, _ = run(tiny_cifar, disk, capsys)
    monkeypatch.setattr(keras.Model, "save_weights", real_save_weights)
    backup = os.path.join(disk.folder, "run_backup")
    assert code == 1, err
    assert err == [full_in_training(backup, "epoch_0002.callbacks.npz")]
    assert backed_up(disk) == 1
    assert sorted(os.listdir(backup)) == ["epoch_0001.callbacks.npz", "epoch_0001.weights.h5",
                                          "state.json"]

    disk.free()
    assert_resumes_from_epoch_1_and_finishes(tiny_cifar, disk, capsys)
