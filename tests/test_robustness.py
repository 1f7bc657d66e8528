"""Nothing lost, nothing run: bad arguments, bad data, divergence, interruption, atomic outputs."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import label_smoothing_func
import label_smoothing_loss
from conftest import tiny_argv, wait_for_backed_up_epochs
from pyimagesearch import outputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("argv, message", [
    (["--smoothing", "1.0"], "--smoothing must be in [0, 1)"),
    (["--smoothing", "-0.1"], "--smoothing must be in [0, 1)"),
    (["--epochs", "0"], "--epochs must be positive"),
    (["--batch-size", "-4"], "--batch-size must be positive"),
    (["--lr", "0"], "--lr must be a positive number"),
    (["--weight-decay", "-0.001"], "--weight-decay must be a number >= 0"),
    (["--weight-decay", "nan"], "--weight-decay must be a number >= 0"),
    (["--train-size", "100", "--val-size", "100"], "--val-size (100) must be smaller"),
    (["--dataset", "/no/such/cifar.tar.gz"], "--dataset /no/such/cifar.tar.gz: no such file"),
    (["--plot", "plot.txt"], "use one of the extensions"),
    (["--epochs", "three"], "invalid int value"),
    (["--no-such-flag"], "unrecognized arguments"),
    (["--compile-cache"], "expected one argument"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert label_smoothing_loss.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [f"label_smoothing_loss.py: error: "
                                                 f"{captured.err.split('error: ', 1)[1].strip()}"]
    assert message in captured.err and captured.out == ""


def test_plot_folder_that_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert label_smoothing_func.main(["--plot", str(blocker / "sub" / "p.png")]) == 2
    assert "cannot create folder" in capsys.readouterr().err


def test_sizes_larger_than_the_dataset(tiny_cifar, tmp_path, capsys):
    argv = tiny_argv(tiny_cifar, tmp_path / "p.png", "--epochs", "1")
    argv[argv.index("--test-size") + 1] = "41"  # the tiny test batch has 40 images
    assert label_smoothing_func.main(argv) == 2
    assert "--test-size 41: the dataset has only 40 images" in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_bad_dataset_fails_before_training_naming_the_file(tmp_path, capsys):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    assert label_smoothing_loss.main(["--dataset", str(archive), "--plot",
                                      str(tmp_path / "out" / "p.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(archive) in err and "corrupt archive" in err
    assert not os.listdir(tmp_path / "out")  # nothing trained, nothing written


def test_divergence_stops_with_partial_results_marked(tiny_cifar, tmp_path, capsys):
    plot = tmp_path / "p.png"
    argv = tiny_argv(tiny_cifar, plot, "--epochs", "3", "--lr", "1e6")
    assert label_smoothing_loss.main(argv) == 1
    assert "diverged" in capsys.readouterr().err
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["diverged"] is True
    # stopped in the epoch it diverged in, whose loss is NaN, written as null
    assert result["history"]["loss"][-1] is None and None not in result["history"]["loss"][:-1]
    assert result["epochs_completed"] == len(result["history"]["loss"]) - 1 < 3
    assert plot.exists() and not (tmp_path / "p_backup").exists()


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "run.json"
    target.write_text('{"old": true}')
    with pytest.raises(RuntimeError):
        with outputs.atomic_path(str(target)) as temporary:
            with open(temporary, "w") as handle:
                handle.write('{"half": ')
            raise RuntimeError("crash while writing")
    assert target.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["run.json"]
    outputs.write_json(str(target), {"new": float("nan")})
    assert json.loads(target.read_text()) == {"new": None}


def start(argv):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    # A shell starts background jobs with SIGINT ignored, and Python then keeps ignoring it:
    # give the run the default disposition, so that Ctrl-C works however the tests were started.
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "label_smoothing_func.py"),
                             *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_run_resumes_with_a_complete_history(stop_signal, tiny_cifar, tmp_path):
    plot = tmp_path / "run.png"
    backup = tmp_path / "run_backup"
    # Generous bounds: a slow, busy machine must not fail this test, only make it wait.
    argv = tiny_argv(tiny_cifar, plot, "--epochs", "30")
    process = start(argv)
    wait_for_backed_up_epochs(str(backup), 2, process)
    process.send_signal(stop_signal)
    if stop_signal == signal.SIGINT:
        # Python raises KeyboardInterrupt only between bytecodes of the main thread, and a
        # library may be in a long call then: press Ctrl-C again, as a user would, until it stops.
        deadline = time.time() + 600
        while process.poll() is None and time.time() < deadline:
            time.sleep(0.5)
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=600)
    if stop_signal == signal.SIGINT:
        assert process.returncode == 130, err[-3000:]
        assert "interrupted" in err and "run the same command again to resume" in err, err
    saved = json.loads((backup / "state.json").read_text())["history"]
    assert len(saved) >= 2 and not plot.exists(), err[-3000:]

    process = start(argv)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    first_epoch = next(line for line in out.splitlines() if line.startswith("Epoch "))
    assert first_epoch != "Epoch 1/30"  # continued, not restarted
    result = json.loads((tmp_path / "run.json").read_text())
    assert result["epochs_completed"] == 30
    assert len(result["history"]["loss"]) == 30 and None not in result["history"]["val_loss"]
    resumed_from = int(first_epoch.split()[1].split("/")[0]) - 1
    # the epochs before the interruption are kept as they were, once each
    assert result["history"]["loss"][:resumed_from] == [e["loss"] for e in saved[:resumed_from]]
    assert not backup.exists()  # removed after the clean finish
    # the live CSV log, rewritten each epoch, also has every epoch once
    rows = (tmp_path / "run_history.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in rows] == list(range(1, 31))


def test_resume_refuses_a_backup_from_different_settings(tiny_cifar, tmp_path, capsys):
    backup = tmp_path / "run_backup"
    backup.mkdir()
    import h5py

    h5py.File(backup / "epoch_0001.weights.h5", "w").close()
    (backup / "state.json").write_text(json.dumps(
        {"config": {"method": "func", "smoothing": 0.3}, "epoch": 1,
         "weights": "epoch_0001.weights.h5", "history": [{"loss": 1.0}]}))
    argv = tiny_argv(tiny_cifar, tmp_path / "run.png", "--epochs", "2")
    assert label_smoothing_func.main(argv) == 2
    err = capsys.readouterr().err
    assert "holds an interrupted run with different settings" in err and "smoothing" in err


def test_a_second_run_on_the_same_outputs_is_refused_and_the_first_finishes(tiny_cifar,
                                                                            tmp_path, capsys):
    plot = tmp_path / "run.png"
    argv = tiny_argv(tiny_cifar, plot, "--epochs", "3")
    first = start(argv)
    wait_for_backed_up_epochs(str(tmp_path / "run_backup"), 1, first)
    assert label_smoothing_func.main(argv) == 2  # the same command, again, while it trains
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "run.lock") in err
    assert f"process {first.pid}" in err, err
    out, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err[-3000:]
    result = json.loads((tmp_path / "run.json").read_text())
    assert result["epochs_completed"] == 3  # trained alone, not resumed by the second run
    assert "Epoch 1/3" in out and not (tmp_path / "run.lock").exists()


def test_an_output_that_cannot_be_written_costs_only_itself(tiny_cifar, tmp_path, capsys):
    (tmp_path / "run.keras").mkdir()  # a folder where the model would go
    argv = tiny_argv(tiny_cifar, tmp_path / "run.png", "--epochs", "1")
    assert label_smoothing_func.main(argv) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in err, err
    assert f"cannot write {tmp_path / 'run.keras'}" in lines[0]
    assert "1 output(s) could not be written" in lines[1]
    result = json.loads((tmp_path / "run.json").read_text())  # the results are all there
    assert result["test_metrics"]["accuracy"] is not None
    assert result["outputs_missing"] == [str(tmp_path / "run.keras")]
    for name in ("run.png", "run_report.txt", "run_calibration.png", "run_history.csv"):
        assert (tmp_path / name).stat().st_size > 0


def test_a_damaged_backup_is_one_line_and_left_alone(tiny_cifar, tmp_path, capsys):
    backup = tmp_path / "run_backup"
    backup.mkdir()
    (backup / "epoch_0001.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    (backup / "state.json").write_text(json.dumps(
        {"config": {}, "epoch": 1, "weights": "epoch_0001.weights.h5", "history": [{}]}))
    before = sorted((path.name, path.read_bytes()) for path in backup.iterdir())
    argv = tiny_argv(tiny_cifar, tmp_path / "run.png", "--epochs", "2")
    assert label_smoothing_func.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"delete {backup} to start afresh" in err, err
    assert sorted((path.name, path.read_bytes()) for path in backup.iterdir()) == before
    assert not (tmp_path / "run.lock").exists()


def test_sigterm_stops_like_ctrl_c(tiny_cifar, tmp_path):
    argv = tiny_argv(tiny_cifar, tmp_path / "run.png", "--epochs", "30")
    process = start(argv)
    wait_for_backed_up_epochs(str(tmp_path / "run_backup"), 1, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 143, err[-3000:]
    assert "terminated" in err and "run the same command again to resume" in err, err
    assert "Traceback" not in err
    assert json.loads((tmp_path / "run_backup" / "state.json").read_text())["epoch"] >= 1
    assert not (tmp_path / "run.lock").exists()


def test_tensorboard_without_its_package_is_a_usage_error(monkeypatch, capsys):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "tensorboard"
                        else real_find_spec(name, *args))
    assert label_smoothing_loss.main(["--tensorboard", "logs"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["label_smoothing_loss.py: error: --tensorboard logs: "
                                        "needs the tensorboard package (pip install tensorboard)"]
