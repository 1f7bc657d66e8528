"""Every error a run raises on purpose, and the exit code each one means (`cli.main` turns them
into one line on stderr and that code). Raised low, where the fault is found; nothing here
imports anything."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class RunError(Exception):
    """Base class: a fault the user can act on, reported in one line (no traceback unless
    --debug). `exit_code` is what the process exits with."""

    exit_code = EXIT_FAILED


class UsageError(RunError):
    """A bad command line, or settings the data or the machine cannot honour."""

    exit_code = EXIT_USAGE


class DatasetError(RunError):
    """A dataset that is missing, malformed or unsafe. The message names the file and the fault."""


class TrainingDiverged(RunError):
    """The loss became NaN or infinite; partial results were written."""


class RunLocked(RunError):
    """Another run is writing the same outputs (its lock file is beside them)."""

    exit_code = EXIT_USAGE


class BackupDamaged(RunError):
    """The resume backup cannot be read; the message names the folder and how to start afresh."""

    exit_code = EXIT_USAGE


class OutputsMissing(RunError):
    """The run finished but some of its outputs could not be written (each named already)."""


class NotARunError(RunError):
    """A file given to compare.py that is not a finished run's JSON."""


class WriteFailed(RunError, OSError):
    """A file of the run could not be written (a full disk, a folder in its way): one line naming
    the file and the cause, wherever in the run it happens. Still an OSError (errno, strerror,
    filename), so code that handles those keeps doing so."""

    def __init__(self, path, error, advice=""):
        cause = error.strerror or (str(error).strip().splitlines() or [type(error).__name__])[0]
        super().__init__(error.errno, cause, path)
        self.advice = advice

    def __str__(self):
        return (f"cannot write {self.filename}: {self.strerror}"
                + (f"; {self.advice}" if self.advice else ""))
