"""Several processes as one job (JAX, keras.distribution.initialize): each trains on its own shard,
only process 0 reports, every process reaches the same test numbers, and an interrupted job
resumes. The job runs as two local processes on 127.0.0.1 with JAX's CPU collectives (gloo)."""
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

import label_smoothing_loss
from conftest import tiny_argv, wait_for_backed_up_epochs
from pyimagesearch.processes import ProcessGroup, shard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_shards_are_equal_disjoint_and_strided():
    examples = np.arange(11)
    shards = [shard(examples, ProcessGroup(index, 3)) for index in range(3)]
    assert [part.tolist() for part in shards] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert shard(examples, ProcessGroup()).tolist() == examples.tolist()


@pytest.mark.parametrize("argv, message", [
    (["--num-processes", "2", "--process-id", "2", "--coordinator", "127.0.0.1:1"],
     "--process-id must be in 0 .. 1 for --num-processes 2, got 2"),
    (["--num-processes", "2"], "--num-processes > 1 needs --coordinator HOST:PORT"),
    (["--num-processes", "3", "--coordinator", "127.0.0.1:1"],
     "--batch-size 512 must divide evenly between the 3 processes"),
    (["--num-processes", "0"], "--num-processes must be positive"),
])
def test_process_arguments_are_checked(argv, message, monkeypatch, capsys):
    for name in ("NUM_PROCESSES", "PROCESS_ID", "JOB_ADDRESSES"):
        monkeypatch.delenv(f"KERAS_DISTRIBUTION_{name}", raising=False)
    assert label_smoothing_loss.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("environment, message", [
    ({"NUM_PROCESSES": "2", "PROCESS_ID": "5", "JOB_ADDRESSES": "127.0.0.1:1"},
     "--process-id must be in 0 .. 1 for --num-processes 2, got 5"),
    ({"NUM_PROCESSES": "2"}, "--num-processes > 1 needs --coordinator"),
    ({"NUM_PROCESSES": "two"}, "$KERAS_DISTRIBUTION_NUM_PROCESSES must be an integer, got 'two'"),
])
def test_process_settings_come_from_keras_variables(environment, message, monkeypatch, capsys):
    for name in ("NUM_PROCESSES", "PROCESS_ID", "JOB_ADDRESSES"):
        monkeypatch.delenv(f"KERAS_DISTRIBUTION_{name}", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(f"KERAS_DISTRIBUTION_{name}", value)
    assert label_smoothing_loss.main([]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the TensorFlow refusal")
def test_several_processes_are_refused_on_tensorflow(tiny_cifar, tmp_path, capsys):
    argv = tiny_argv(tiny_cifar, tmp_path / "p.png", "--num-processes", "2",
                     "--coordinator", "127.0.0.1:1")
    assert label_smoothing_loss.main(argv) == 2
    err = capsys.readouterr().err
    assert "several processes need KERAS_BACKEND=jax" in err and "keras-team/keras#20585" in err
    assert not os.listdir(tmp_path)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_job(argv, count=2):
    """Start `count` processes of one job; each one's output goes to a file beside its plot."""
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("XLA_FLAGS", None)  # one CPU device a process
    coordinator = f"127.0.0.1:{free_port()}"
    plot = argv[argv.index("--plot") + 1]
    jobs = []
    for index in range(count):
        log = open(f"{plot}.process{index}.log", "w", encoding="utf-8")
        jobs.append((subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "label_smoothing_loss.py"), *argv,
             "--num-processes", str(count), "--process-id", str(index),
             "--coordinator", coordinator], env=env, stdout=log, stderr=subprocess.STDOUT), log))
    return jobs


def finish(jobs, timeout=600):
    outputs = []
    for process, log in jobs:
        process.wait(timeout=timeout)
        log.close()
        with open(log.name, encoding="utf-8") as handle:
            outputs.append((process.returncode, handle.read()))
    return outputs


def done_line(output):
    """The closing summary without its time, which differs between processes."""
    line = next(line for line in output.splitlines() if line.startswith("done: "))
    return line.rsplit(" | ", 1)[0]


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_two_processes_train_resume_and_agree(tiny_cifar, tmp_path):
    plot = tmp_path / "job.png"
    backup = tmp_path / "job_backup"
    argv = tiny_argv(tiny_cifar, plot, "--epochs", "4")

    jobs = start_job(argv)
    wait_for_backed_up_epochs(str(backup), 1, jobs[0][0])
    for process, _ in jobs:
        process.send_signal(signal.SIGKILL)
    finish(jobs)
    saved = json.loads((backup / "state.json").read_text())["history"]

    results = finish(start_job(argv))  # the same command resumes, on another port
    for returncode, output in results:
        assert returncode == 0, output[-3000:]
    (_, chief_output), (_, other_output) = results
    first_epoch = next(line for line in chief_output.splitlines() if line.startswith("Epoch "))
    resumed_from = int(first_epoch.split()[1].split("/")[0]) - 1
    assert resumed_from >= 1  # continued, not restarted
    assert done_line(chief_output) == done_line(other_output)  # the same weights and numbers
    assert "macro avg" in chief_output and "macro avg" not in other_output  # one report

    result = json.loads((tmp_path / "job.json").read_text())
    assert result["processes"] == 2 and result["data_parallel"]
    assert len(result["devices"]) == 2 and result["epochs_completed"] == 4
    # validated on the weights of each epoch, not a stale copy
    assert len(set(result["history"]["val_loss"])) == 4
    assert result["history"]["loss"][:resumed_from] == [e["loss"] for e in saved[:resumed_from]]
    assert result["data"]["train_images"] == 120  # the whole training set, over both processes
    assert not backup.exists()  # removed by the chief after the clean finish
