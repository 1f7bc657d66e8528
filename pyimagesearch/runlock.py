"""One run per set of outputs: a lock file beside them (`<stem>.lock`), created atomically and
held while the run writes them. Two runs with the same --plot would otherwise overwrite each
other's backup and results. A lock whose process is gone (killed, machine rebooted) is taken
over; one held on another machine never is, since whether its process lives cannot be told."""
import datetime
import json
import os
import socket
import time

from pyimagesearch.errors import RunLocked, WriteFailed

# An unreadable lock this recent may be one that another run has created and not yet filled in.
UNREADABLE_GRACE_SECONDS = 5


def process_alive(pid):
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)  # signal 0 only checks
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class OutputLock:
    """`with OutputLock("runs/loss.lock") as lock:` holds the lock for the block. `acquire` returns
    None, or a one-line note to print when a stale lock was taken over (kept as `note`), and
    raises RunLocked when another run holds it; `release` removes the file
    only if it is still this process's lock. `command` is recorded to name this run to others."""

    def __init__(self, path, command=None):
        self.path, self.command = path, command
        self.held, self.note = False, None

    def _ours(self):
        return {"pid": os.getpid(), "host": socket.gethostname()}

    def _create(self):
        """Create the lock file holding our details; False if it exists already. WriteFailed
        if it cannot be written (a full disk), before the run has touched anything."""
        try:
            handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as error:
            raise WriteFailed(self.path, error) from error
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        details = dict(self._ours(), started=started, command=self.command)
        try:
            os.write(handle, (json.dumps(details) + "\n").encode())
        except BaseException as error:
            os.close(handle)
            os.remove(self.path)
            if isinstance(error, OSError):
                raise WriteFailed(self.path, error) from error
            raise
        os.close(handle)
        self.held = True
        return True

    def _read(self):
        """(raw bytes, holder dict or None if unreadable); (None, None) if there is no file."""
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None, None
        try:
            holder = json.loads(raw)
            int(holder["pid"]), str(holder["host"])
        except (ValueError, TypeError, KeyError):
            return raw, None
        return raw, holder

    def _judge(self, holder):
        """A note saying why the existing lock is stale, or raise RunLocked naming its run."""
        if holder is None:
            age = time.time() - os.stat(self.path).st_mtime
            if age >= UNREADABLE_GRACE_SECONDS:
                return f"took over the unreadable lock {self.path}"
            raise RunLocked(f"{self.path} is being created by another run right now: it writes "
                            "the same outputs; use a different --plot, or wait for it")
        pid, host = int(holder["pid"]), str(holder["host"])
        run = (f"process {pid} on {host}, started {holder.get('started', '?')}"
               + (f" ({holder['command']})" if holder.get("command") else ""))
        if host != socket.gethostname():
            raise RunLocked(f"{self.path} is held by {run}, another machine: that run writes the "
                            "same outputs; use a different --plot, or wait for it, and delete "
                            f"{self.path} only if that run is known to be gone")
        if pid > 0 and not process_alive(pid):
            return f"took over the stale lock {self.path} of process {pid} on {host}, which is gone"
        raise RunLocked(f"{self.path} is held by {run}: another run is writing the same outputs; "
                        "use a different --plot, or wait for it to finish")

    def _remove_if_unchanged(self, stale):
        """Remove the lock file if it still holds `stale`. It is moved aside first and checked
        there, so that a lock another run has just taken over is put back, not deleted."""
        aside = f"{self.path}.{os.getpid()}.stale"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        with open(aside, "rb") as handle:
            moved = handle.read()
        if moved != stale:
            try:
                os.link(aside, self.path)  # put back, unless yet another run has created one
            except FileExistsError:
                pass
        os.remove(aside)

    def acquire(self):
        note = None
        for _ in range(3):
            if self._create():
                self.note = note
                return note
            raw, holder = self._read()
            if raw is None:  # released between our try and the read
                continue
            try:
                note = self._judge(holder)
            except FileNotFoundError:  # an unreadable one, removed as we looked at it
                continue
            self._remove_if_unchanged(raw)
        raise RunLocked(f"{self.path}: other runs keep taking this lock; they write the same "
                        "outputs; use a different --plot, or wait for them")

    def release(self):
        if not self.held:
            return
        self.held = False
        _, holder = self._read()
        if holder is not None and {"pid": holder["pid"], "host": holder["host"]} == self._ours():
            os.remove(self.path)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()
