"""Stop signals (signals.py): raised as exceptions, and raised again at the run's next safe point
when a finaliser swallowed them, so that a Ctrl-C or SIGTERM is never lost."""
import gc
import os
import signal
import subprocess
import sys

import pytest

import label_smoothing_loss
from conftest import tiny_argv
from pyimagesearch import callbacks, signals
from pyimagesearch.errors import EXIT_INTERRUPTED, EXIT_TERMINATED

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STOPS = [(signal.SIGTERM, signals.Terminated), (signal.SIGINT, KeyboardInterrupt)]


@pytest.fixture(autouse=True)
def handlers_restored():
    """Each test starts with Python's own Ctrl-C handler, as in a terminal (tests started as a
    shell's background job inherit SIGINT ignored, which a run keeps ignored). A stopped run
    ignores both signals for the rest of its process (signals.ignore_from_now): give the next
    test the handlers back."""
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGTERM, before[0])
    signal.signal(signal.SIGINT, before[1])


class SignalsItselfWhenCollected:
    """An object whose finaliser sends `number` to this process and lets the handler run inside
    it, as a library's finaliser can be running when a user's signal arrives."""

    def __init__(self, number):
        self.number = number

    def __del__(self):
        os.kill(os.getpid(), self.number)
        for _ in range(1000):  # bytecodes, between which Python runs the handler
            pass


def swallow(number):
    SignalsItselfWhenCollected(number)  # collected at once: the handler runs in its __del__
    gc.collect()


@pytest.mark.parametrize("number, stop", STOPS)
def test_a_signal_raised_inside_a_finaliser_is_lost_to_python_and_raised_again(
        number, stop, monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    with signals.handled():
        signals.raise_if_stopped()  # nothing yet
        swallow(number)  # returns: Python went on past the exception
        assert reported == []  # and its "Exception ignored" report is left out
        with pytest.raises(stop):
            signals.raise_if_stopped()
        with pytest.raises(stop):  # the run's next batch
            callbacks.StopCheck().on_train_batch_begin(0)


@pytest.mark.parametrize("number, stop", STOPS)
def test_a_signal_in_ordinary_code_is_raised_where_it_lands(number, stop):
    with signals.handled():
        with pytest.raises(stop):
            os.kill(os.getpid(), number)
            for _ in range(1000):
                pass


def test_other_exceptions_in_finalisers_are_still_reported(monkeypatch):
    class Faulty:
        def __del__(self):
            raise ValueError("a library's own fault")
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    with signals.handled():
        Faulty()
        gc.collect()
    assert [type(report.exc_value) for report in reported] == [ValueError]
    assert sys.unraisablehook == reported.append


def test_once_python_exits_both_signals_are_ignored(tmp_path):
    """An exit function registered before the run's runs after signals.py's (last in, first
    out), as the backend's finalisers do: it finds both signals ignored."""
    probe = (
        "import atexit, signal\n"
        "atexit.register(lambda: print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN,"
        " signal.getsignal(signal.SIGTERM) is signal.SIG_IGN))\n"
        "from pyimagesearch import signals\n"
        "with signals.handled():\n"
        "    pass\n"
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n")
    completed = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                               text=True, timeout=60,  # Ctrl-C as in a terminal, see above
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert completed.stdout.split() == ["True", "True", "True"], completed.stderr


def test_the_handlers_are_restored_and_nothing_is_left_pending():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with signals.handled():
        swallow(signal.SIGTERM)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    with signals.handled():
        signals.raise_if_stopped()  # the last block's stop does not carry over


def test_a_sigint_the_process_ignores_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a shell's background job
    try:
        with signals.handled():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("number, code", [(signal.SIGTERM, EXIT_TERMINATED),
                                          (signal.SIGINT, EXIT_INTERRUPTED)])
def test_a_run_whose_stop_a_finaliser_swallowed_stops_with_its_epoch_backed_up(
        number, code, tiny_cifar, tmp_path, monkeypatch, capsys):
    real_epoch_end = callbacks.TimeEstimate.on_epoch_end

    def swallowed_after_epoch_1(self, epoch, logs=None):
        real_epoch_end(self, epoch, logs)
        if epoch == 0:
            swallow(number)
    monkeypatch.setattr(callbacks.TimeEstimate, "on_epoch_end", swallowed_after_epoch_1)
    plot = tmp_path / "run.png"
    assert label_smoothing_loss.main(tiny_argv(tiny_cifar, plot, "--epochs", "3")) == code
    captured = capsys.readouterr()
    backup = tmp_path / "run_backup"
    assert f"saved in {backup}; run the same command again to resume" in captured.err
    # stopped as epoch 1 ended, once its backup was written: no batch of epoch 2 trained
    assert "epoch 1/3 took" in captured.out and "Epoch 2/3" not in captured.out
    assert not (tmp_path / "run.json").exists()

    monkeypatch.setattr(callbacks.TimeEstimate, "on_epoch_end", real_epoch_end)
    assert label_smoothing_loss.main(tiny_argv(tiny_cifar, plot, "--epochs", "3")) == 0
    assert f"resuming from {backup}: 1 epochs done, continuing with epoch 2" in \
        capsys.readouterr().out
