"""Stop signals during a run: Ctrl-C raises KeyboardInterrupt, as Python's own handler does, and
SIGTERM (a batch scheduler, `docker stop`) raises `Terminated` in the same way.

Python runs a signal's handler in the main thread between two bytecodes, wherever they are. When
that is inside a finaliser (an object's `__del__`, a weakref callback, which libraries run as
their objects are collected) the exception it raises goes no further: Python prints "Exception
ignored in ..." and carries on as if no signal had come, and the run would go on to its end.
So each handler also records its signal, and `raise_if_stopped()`, at the run's safe points
(each training batch, each epoch's end after its backup, before the evaluation and before the
writes), raises it again; Python's report of it as ignored is left out, since it is not.
A stop recorded after the last safe point lets the run finish; once Python begins to exit, both
signals are ignored, so that a second Ctrl-C while the backend's finalisers run cannot kill the
process or print a traceback.
"""
import atexit
import contextlib
import signal
import sys


class Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt."""


_pending = None  # the exception class of a signal raised during `handled()`, if any
_ignored_at_exit = False


def _stop(exception):
    def handler(signum, frame):
        global _pending
        _pending = exception
        raise exception()
    return handler


@contextlib.contextmanager
def handled():
    """SIGINT and SIGTERM raise KeyboardInterrupt and Terminated while the block runs, and are
    recorded for `raise_if_stopped`. A SIGINT that the process was started ignoring (a shell's
    background job) stays ignored."""
    global _pending, _ignored_at_exit
    _pending = None
    if not _ignored_at_exit:
        atexit.register(ignore_from_now)
        _ignored_at_exit = True
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _stop(Terminated))}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _stop(KeyboardInterrupt))
    report_unraisable = sys.unraisablehook

    def unraisable(report):
        if not isinstance(report.exc_value, (KeyboardInterrupt, Terminated)):
            report_unraisable(report)
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        sys.unraisablehook = report_unraisable
        for number, handler in previous.items():
            signal.signal(number, handler)
        _pending = None


def ignore_from_now():
    """SIGINT and SIGTERM ignored for the rest of the process, once a run has stopped: a second
    Ctrl-C while it says so, or while Python exits and the backend's finalisers run, must not
    turn a clean stop into a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def raise_if_stopped():
    """Raise the stop signal that came during `handled()`, in case a finaliser swallowed it; a
    stop that did reach the run has ended it already, so this only ever raises a lost one."""
    if _pending is not None:
        raise _pending()
