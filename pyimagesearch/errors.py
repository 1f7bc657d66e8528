"""The errors a run can raise on purpose, each mapped to an exit code by `cli.main`.
(`cifar10.DatasetError`, for bad data, lives beside the loader that raises it.)"""


class UsageError(Exception):
    """A bad command line: one line on stderr and exit code 2."""


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; partial results were written. Exit code 1."""
