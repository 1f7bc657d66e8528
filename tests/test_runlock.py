"""One run per set of outputs: the lock file beside them, its stale take-over and its races."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from pyimagesearch.errors import RunLocked
from pyimagesearch.runlock import UNREADABLE_GRACE_SECONDS, OutputLock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_lock(path, pid, host=None):
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                "started": "2025-01-01T00:00:00+00:00", "command": "a run"}))


def exited_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()  # reaped: the pid names no process now
    return process.pid


def test_second_lock_is_refused_naming_the_holder_and_released_lock_can_be_taken(tmp_path):
    path = tmp_path / "loss.lock"
    with OutputLock(str(path), command="python label_smoothing_loss.py") as lock:
        assert lock.note is None
        held = json.loads(path.read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        assert held["command"] == "python label_smoothing_loss.py"
        with pytest.raises(RunLocked) as refused:
            OutputLock(str(path)).acquire()
        message = str(refused.value)
        assert "\n" not in message and str(path) in message
        assert f"process {os.getpid()} on {socket.gethostname()}" in message
        assert "--plot" in message and "python label_smoothing_loss.py" in message
        assert path.exists()  # the refused one did not remove ours
    assert not path.exists()
    again = OutputLock(str(path))
    assert again.acquire() is None and path.exists()
    again.release()
    assert os.listdir(tmp_path) == []


def test_stale_lock_of_an_exited_process_is_taken_over_with_a_note(tmp_path):
    path = tmp_path / "loss.lock"
    pid = exited_pid()
    write_lock(path, pid)
    lock = OutputLock(str(path))
    note = lock.acquire()
    assert note == (f"took over the stale lock {path} of process {pid} on "
                    f"{socket.gethostname()}, which is gone")
    assert lock.note == note
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()
    assert os.listdir(tmp_path) == []  # nothing moved aside is left behind


@pytest.mark.parametrize("holder", ["parent", "sleeping child"])
def test_lock_of_a_live_process_is_refused(holder, tmp_path):
    path = tmp_path / "loss.lock"
    child = None
    if holder == "parent":
        pid = os.getppid()
    else:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        pid = child.pid
    try:
        write_lock(path, pid)
        with pytest.raises(RunLocked, match=f"held by process {pid} on "):
            OutputLock(str(path)).acquire()
        assert json.loads(path.read_text())["pid"] == pid  # left as it was
    finally:
        if child is not None:
            child.kill()
            child.wait()


def test_lock_from_another_machine_is_never_taken_over(tmp_path):
    path = tmp_path / "loss.lock"
    write_lock(path, exited_pid(), host="elsewhere.example")
    with pytest.raises(RunLocked) as refused:
        OutputLock(str(path)).acquire()
    message = str(refused.value)
    assert "on elsewhere.example" in message and f"delete {path} only if" in message
    assert json.loads(path.read_text())["host"] == "elsewhere.example"


def test_unreadable_lock_is_taken_over_only_once_it_is_old(tmp_path):
    path = tmp_path / "loss.lock"
    path.write_bytes(b"")  # as left by a run killed between creating and filling it in
    with pytest.raises(RunLocked, match="being created by another run"):
        OutputLock(str(path)).acquire()
    old = time.time() - UNREADABLE_GRACE_SECONDS - 1
    os.utime(path, (old, old))
    lock = OutputLock(str(path))
    assert lock.acquire() == f"took over the unreadable lock {path}"
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()


def test_release_leaves_a_lock_that_another_run_now_holds(tmp_path):
    path = tmp_path / "loss.lock"
    lock = OutputLock(str(path))
    lock.acquire()
    write_lock(path, os.getppid())  # e.g. ours was taken over while we seemed gone
    lock.release()
    assert json.loads(path.read_text())["pid"] == os.getppid()


def test_take_over_keeps_a_lock_another_run_took_over_first(tmp_path, monkeypatch):
    # Between our judging the lock stale and our removing it, another run takes it over: the
    # file we would remove is then that run's live lock, which must stay.
    path = tmp_path / "loss.lock"
    write_lock(path, exited_pid())
    judge = OutputLock._judge

    def judge_then_lose_the_race(self, holder):
        note = judge(self, holder)
        write_lock(path, os.getppid())
        return note

    monkeypatch.setattr(OutputLock, "_judge", judge_then_lose_the_race)
    with pytest.raises(RunLocked, match=f"held by process {os.getppid()} on "):
        OutputLock(str(path)).acquire()
    assert json.loads(path.read_text())["pid"] == os.getppid()
    assert os.listdir(tmp_path) == ["loss.lock"]


# Each contender waits for the start file, tries the lock, reports, and holds it until its
# standard input closes, so that a loser cannot win simply because the winner has finished.
CONTENDER = """
import os, sys, time
sys.path.insert(0, {root!r})
from pyimagesearch.errors import RunLocked
from pyimagesearch.runlock import OutputLock
while not os.path.exists({start!r}):
    time.sleep(0.001)
lock = OutputLock({path!r})
try:
    lock.acquire()
    print("won", flush=True)
except RunLocked:
    print("refused", flush=True)
sys.stdin.read()
lock.release()
"""


@pytest.mark.parametrize("stale", [False, True], ids=["no lock", "stale lock"])
def test_two_runs_starting_at_once_exactly_one_wins(stale, tmp_path):
    for attempt in range(4):
        path, start = tmp_path / f"{attempt}.lock", tmp_path / f"{attempt}.start"
        if stale:
            write_lock(path, exited_pid())
        code = CONTENDER.format(root=ROOT, start=str(start), path=str(path))
        contenders = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True) for _ in range(2)]
        try:
            start.write_text("")
            outcomes = [contender.stdout.readline().strip() for contender in contenders]
            assert sorted(outcomes) == ["refused", "won"]
            assert json.loads(path.read_text())["pid"] == contenders[outcomes.index("won")].pid
        finally:
            for contender in contenders:
                contender.communicate("", timeout=60)
        assert not path.exists()  # the winner released it; the loser did not touch it
