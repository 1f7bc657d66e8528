"""The command line both scripts share: the flags, exit codes and the closing summary.
`main(method, argv)` is each script's entry point.

Parsing and every check that needs only the arguments come before Keras or a backend is
imported, so `--help` and usage errors are immediate and print nothing else.
"""
import argparse
import contextlib
import json
import os
import sys

from pyimagesearch import config as run_config, signals, tf_settings
from pyimagesearch.cifar10 import DEFAULT_VAL_SIZE
from pyimagesearch.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, RunError, UsageError
from pyimagesearch.outputs import BACKUP_STATE_FILE
from pyimagesearch.phases import summary as phase_summary
from pyimagesearch.recipes import DEFAULT_RECIPE, RECIPES


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise UsageError(message)


def build_parser(method):
    parser = _Parser(
        prog=f"label_smoothing_{method.name}.py",
        description=f"Train a ResNet on CIFAR-10 with label smoothing: {method.summary}. "
                    "Writes the plot, <stem>_report.txt, <stem>.json, <stem>_history.csv, "
                    "<stem>_calibration.png and the trained model <stem>.keras. "
                    "KERAS_BACKEND=tensorflow|jax|torch picks the backend.")
    add = parser.add_argument
    add("--smoothing", type=float, default=0.1,
        help="label-smoothing factor in [0, 1) (default: %(default)s)")
    add("--plot", default="plot.png",
        help="training-curve plot; the other outputs go beside it (default: %(default)s)")
    add("--dataset", default=None,
        help="cifar-10-python.tar.gz or its cifar-10-batches-py/ folder "
             "(default: keras.datasets.cifar10, which downloads)")
    add("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE,
        help="hyperparameter preset (default: %(default)s, airbench94's differences from "
             "'fast' in 12 epochs; 'airbench10' the same in 10 epochs, 'airbench11' in 11 "
             "with weight decay 6e-3); 'fast' the 14-epoch residual "
             "net, 'overfit' the study's long regime (no augmentation, 30 epochs), "
             "'overfit_small' the same at half width (the distillation study's student), "
             "'tutorial' the 2019 setup (70 epochs, batch 64)")
    add("--epochs", type=int, help="epochs (default: the recipe's)")
    add("--batch-size", type=int,
        help="batch size; the training set is padded to whole batches with copies of a few "
             "of its images (default: the recipe's)")
    add("--lr", type=float, help="peak learning rate (default: the recipe's)")
    add("--weight-decay", type=float,
        help="decoupled weight decay: each step scales the kernels by (1 - lr_t * this); 0 "
             "for none (default: the recipe's)")
    add("--seed", type=int, default=42,
        help="random seed for weights, shuffling, augmentation (default: %(default)s)")
    add("--train-size", type=int, help="use only the first N training images (smoke runs)")
    add("--test-size", type=int, help="use only the first N test images (smoke runs)")
    add("--val-size", type=int,
        help=f"training images held out for validation and temperature scaling "
             f"(default: min({DEFAULT_VAL_SIZE}, train images / 10); 0 for none)")
    add("--teacher", metavar="PATH.keras",
        help="knowledge distillation: train on (1 - LAMBDA) * cross-entropy + LAMBDA * T^2 * "
             "KL(teacher || student) at temperature T, from this teacher, the <stem>.keras of "
             "a run of either script. Its logits on the training images are computed once, "
             "so the recipe must not augment (e.g. --recipe overfit_small)")
    add("--distill-temperature", type=float, metavar="T",
        help=f"distillation temperature, > 0 (default with --teacher: "
             f"{run_config.DISTILL_TEMPERATURE:g})")
    add("--distill-weight", type=float, metavar="LAMBDA",
        help=f"weight of the distillation term, in [0, 1]; 0 is plain cross-entropy "
             f"(default with --teacher: {run_config.DISTILL_WEIGHT:g})")
    add("--precision", choices=run_config.PRECISIONS, default="auto",
        help="auto (the default): bfloat16 on CPUs/GPUs with fast bf16 units, float32 "
             "elsewhere")
    add("--data-parallel", choices=run_config.DATA_PARALLEL_MODES, default="auto",
        help="train on several local devices, splitting each batch between them (JAX: "
             "keras.distribution.DataParallel; TensorFlow: MirroredStrategy). auto (the "
             "default): on when there is more than one GPU; on: every device Keras lists, CPUs "
             "included, through Keras' distribution even when there is one")
    add("--num-processes", type=int,
        default=_environment_int("KERAS_DISTRIBUTION_NUM_PROCESSES", 1),
        help="processes (one or more a machine) that train as one job, JAX only; default "
             "$KERAS_DISTRIBUTION_NUM_PROCESSES or 1. Start the same command in each, with its "
             "--process-id")
    add("--process-id", type=int, default=_environment_int("KERAS_DISTRIBUTION_PROCESS_ID", 0),
        help="this process's number, 0 .. --num-processes - 1; process 0 writes the outputs "
             "(default: $KERAS_DISTRIBUTION_PROCESS_ID or 0)")
    add("--coordinator", default=os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES"),
        help="HOST:PORT of process 0, where the processes meet "
             "(default: $KERAS_DISTRIBUTION_JOB_ADDRESSES)")
    add("--steps-per-execution", type=int, default=1,
        help="training steps per call into the backend; more saves host round trips on a GPU "
             "(default: %(default)s)")
    add("--jit-compile", choices=tuple(run_config.JIT_COMPILE_MODES), default="auto",
        help="compile the training step with XLA: auto (the default) is Keras' choice, XLA "
             "under JAX and on a TensorFlow GPU, plain TensorFlow graphs on a CPU")
    add("--repeatable", choices=("on", "off"), default="on",
        help="on (the default): the same command gives the same bits, and a resumed run ends "
             "as an uninterrupted one; TensorFlow then runs one op at a time, each on every "
             "core. off: TensorFlow's own threading, several ops at once, with last-bit "
             "differences from run to run. Changes nothing under JAX and PyTorch")
    add("--compile-cache", default=run_config.default_compile_cache(),
        help="JAX only: folder of the persistent compilation cache, so that a second run "
             "compiles nothing big; 'off' for none (default: $JAX_COMPILATION_CACHE_DIR or "
             "%(default)s)")
    add("--tensorboard", metavar="DIR",
        help="also log each epoch for TensorBoard in DIR (Keras' TensorBoard callback, which "
             "hooks every step's end, so Keras then waits for the device after each step)")
    add("--debug", action="store_true", help="show tracebacks for errors")
    return parser


def _environment_int(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"${name} must be an integer, got {value!r}") from None


def parse_config(method, argv):
    """The run's RunConfig from `argv`, every argument checked; UsageError on a bad one."""
    return run_config.resolve(method.name, build_parser(method).parse_args(argv), argv)


def summary_line(result):
    metrics = result["test_metrics"]
    line = (f"done: {result['method']} smoothing {result['args']['smoothing']}: test accuracy "
            f"{metrics['accuracy']:.4f}, NLL {metrics['nll']:.4f}, ECE {metrics['ece']:.4f}, "
            f"Brier {metrics['brier']:.4f}, mean confidence {metrics['mean_confidence']:.4f}")
    if result["temperature"] is not None:
        scaled = result["test_metrics_temperature_scaled"]
        line += (f" | temperature {result['temperature']:.3f}: NLL {scaled['nll']:.4f}, "
                 f"ECE {scaled['ece']:.4f}")
    return (line + f" | {result['epochs_completed']} epochs in {result['wall_seconds']:.0f} s "
            f"({phase_summary(result['phases'])})")


@contextlib.contextmanager
def _quiet_backend_start():
    """TensorFlow's C++ start-up lines (oneDNN, CUDA probing, a cuInit error on every machine
    without a GPU, absl's warnings before it is set up) are noise to a user. Some are written
    before TensorFlow reads its log level, and some whatever the level (1 or 2 still let absl's
    and CUDA's through), so the process's stderr is closed to them while the backend loads and
    TensorFlow's runtime starts; Python's own errors are raised after it is restored. Only
    TF_CPP_MIN_LOG_LEVEL=0, everything on purpose, shows them."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _backed_up(backup_folder):
    """Whether `backup_folder` names an epoch to resume from. Read without Keras: an interrupt
    can land before Keras has loaded, and loading it now would be slow and print TensorFlow's
    start-up lines; whether the epoch's files are whole is the rerun's to check."""
    try:
        with open(os.path.join(backup_folder, BACKUP_STATE_FILE),
                  encoding="utf-8") as handle:
            epoch = json.load(handle).get("epoch")
    except (OSError, ValueError, AttributeError):  # none, unreadable, not a JSON object
        return False
    return isinstance(epoch, int) and epoch > 0


def main(method, argv=None):
    """Entry point of both scripts: returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = f"label_smoothing_{method.name}.py"
    config = None
    try:
        config = parse_config(method, argv)
        tf_settings.set_defaults()
        with _quiet_backend_start():
            from pyimagesearch import hardware
            from pyimagesearch.training import run  # Keras and the backend load here

            hardware.start_runtime(config.repeatable)

        with signals.handled():
            result = run(method, config)
    except RunError as error:
        if config is not None and config.debug and not isinstance(error, UsageError):
            raise
        one_line = " ".join(str(error).split())  # e.g. tarfile lists one reason per line
        print(f"{prog}: error: {one_line}", file=sys.stderr)
        return error.exit_code
    except (KeyboardInterrupt, signals.Terminated) as stop:
        # the backup is on disk; a second signal must not turn a clean exit into a traceback
        signals.ignore_from_now()
        backup = config.paths["backup"] if config is not None else None
        what = "terminated" if isinstance(stop, signals.Terminated) else "interrupted"
        print(f"\n{prog}: {what}. "
              + (f"Progress up to the last completed epoch is saved in {backup}; run the same "
                 "command again to resume." if backup and _backed_up(backup) else
                 "No epoch had completed, nothing to resume."), file=sys.stderr)
        return EXIT_TERMINATED if isinstance(stop, signals.Terminated) else EXIT_INTERRUPTED
    print(summary_line(result), flush=True)
    return EXIT_OK
