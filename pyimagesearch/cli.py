"""The command line both scripts share: arguments and their checks, exit codes, the closing
summary. `main(method, argv)` is each script's entry point."""
import argparse
import os
import signal
import sys

import numpy as np

from pyimagesearch.cifar10 import DEFAULT_VAL_SIZE, DatasetError
from pyimagesearch.errors import TrainingDiverged, UsageError
from pyimagesearch.hardware import PRECISIONS
from pyimagesearch.outputs import output_paths
from pyimagesearch.recipes import DEFAULT_RECIPE, FLAG_OVERRIDES, RECIPES
from pyimagesearch.training import run

PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise UsageError(message)


def build_parser(method):
    parser = _Parser(
        prog=f"label_smoothing_{method.name}.py",
        description=f"Train a ResNet on CIFAR-10 with label smoothing: {method.summary}. "
                    "Writes the plot, <stem>_report.txt, <stem>.json, <stem>_calibration.png "
                    "and the trained model <stem>.keras. KERAS_BACKEND=tensorflow|jax|torch "
                    "picks the backend.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--smoothing", type=float, default=0.1, help="label-smoothing factor in [0, 1)")
    add("--plot", default="plot.png", help="training-curve plot; other outputs go beside it")
    add("--dataset", default=None,
        help="cifar-10-python.tar.gz or its cifar-10-batches-py/ folder "
             "(default: keras.datasets.cifar10, which downloads)")
    add("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE,
        help="hyperparameter preset; 'overfit' is the study's long regime (no augmentation, "
             "30 epochs), 'tutorial' the 2019 setup (70 epochs, batch 64)")
    add("--epochs", type=int, help="epochs (default: the recipe's)")
    add("--batch-size", type=int, help="batch size (default: the recipe's)")
    add("--lr", type=float, help="peak learning rate (default: the recipe's)")
    add("--weight-decay", type=float,
        help="decoupled weight decay: each step scales the kernels by (1 - lr_t * this); 0 "
             "for none (default: the recipe's)")
    add("--seed", type=int, default=42, help="random seed for weights, shuffling, augmentation")
    add("--train-size", type=int, help="use only the first N training images (smoke runs)")
    add("--test-size", type=int, help="use only the first N test images (smoke runs)")
    add("--val-size", type=int,
        help=f"training images held out for validation and temperature scaling "
             f"(default: min({DEFAULT_VAL_SIZE}, train images / 10); 0 for none)")
    add("--precision", choices=PRECISIONS, default="auto",
        help="auto: bfloat16 on CPUs/GPUs with fast bf16 units, float32 elsewhere")
    add("--data-parallel", choices=("auto", "on", "off"), default="auto",
        help="train on several local devices, splitting each batch between them (JAX: "
             "keras.distribution.DataParallel; TensorFlow: MirroredStrategy). auto: on when "
             "there is more than one GPU; on: every device Keras lists, CPUs included, through "
             "Keras' distribution even when there is one")
    add("--num-processes", type=int,
        default=_environment_int("KERAS_DISTRIBUTION_NUM_PROCESSES", 1),
        help="processes (one or more a machine) that train as one job, JAX only; default "
             "$KERAS_DISTRIBUTION_NUM_PROCESSES or 1. Start the same command in each, with its "
             "--process-id")
    add("--process-id", type=int, default=_environment_int("KERAS_DISTRIBUTION_PROCESS_ID", 0),
        help="this process's number, 0 .. --num-processes - 1; process 0 writes the outputs "
             "(default $KERAS_DISTRIBUTION_PROCESS_ID or 0)")
    add("--coordinator", default=os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES"),
        help="HOST:PORT of process 0, where the processes meet "
             "(default $KERAS_DISTRIBUTION_JOB_ADDRESSES)")
    add("--steps-per-execution", type=int, default=1,
        help="training steps per call into the backend; more saves host round trips on a GPU")
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


def parse_args(method, argv):
    """Parse and check every argument before any data is loaded; UsageError on a bad one."""
    args = build_parser(method).parse_args(argv)
    recipe = RECIPES[args.recipe]
    for key in FLAG_OVERRIDES:
        if getattr(args, key) is None:
            setattr(args, key, recipe[key])
    if not 0.0 <= args.smoothing < 1.0:
        raise UsageError(f"--smoothing must be in [0, 1), got {args.smoothing}")
    for flag in ("epochs", "batch_size", "train_size", "test_size", "steps_per_execution",
                 "num_processes"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if not args.lr > 0 or not np.isfinite(args.lr):
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    if not args.weight_decay >= 0 or not np.isfinite(args.weight_decay):
        raise UsageError(f"--weight-decay must be a number >= 0, got {args.weight_decay}")
    if args.val_size is not None and args.val_size < 0:
        raise UsageError(f"--val-size must be >= 0, got {args.val_size}")
    if args.train_size is not None and args.val_size is not None \
            and args.val_size >= args.train_size:
        raise UsageError(f"--val-size ({args.val_size}) must be smaller than --train-size "
                         f"({args.train_size})")
    _check_processes(args)
    if args.dataset is not None and not os.path.exists(args.dataset):
        raise UsageError(f"--dataset {args.dataset}: no such file or folder")
    _check_plot_path(args.plot)
    return args


def _check_processes(args):
    if not 0 <= args.process_id < args.num_processes:
        raise UsageError(f"--process-id must be in 0 .. {args.num_processes - 1} for "
                         f"--num-processes {args.num_processes}, got {args.process_id}")
    if args.num_processes == 1:
        return
    if not args.coordinator:
        raise UsageError("--num-processes > 1 needs --coordinator HOST:PORT (process 0's "
                         "address) or $KERAS_DISTRIBUTION_JOB_ADDRESSES")
    if args.batch_size % args.num_processes:
        raise UsageError(f"--batch-size {args.batch_size} must divide evenly between the "
                         f"{args.num_processes} processes")


def _check_plot_path(plot):
    if os.path.splitext(plot)[1].lower() not in PLOT_FORMATS:
        raise UsageError(f"--plot {plot}: use one of the extensions {', '.join(PLOT_FORMATS)}")
    folder = os.path.dirname(os.path.abspath(plot))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--plot {plot}: cannot create folder {folder} ({error.strerror})") \
            from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--plot {plot}: folder {folder} is not writable")


def summary_line(result):
    metrics = result["test_metrics"]
    line = (f"done: {result['method']} smoothing {result['args']['smoothing']}: test accuracy "
            f"{metrics['accuracy']:.4f}, NLL {metrics['nll']:.4f}, ECE {metrics['ece']:.4f}, "
            f"Brier {metrics['brier']:.4f}, mean confidence {metrics['mean_confidence']:.4f}")
    if result["temperature"] is not None:
        scaled = result["test_metrics_temperature_scaled"]
        line += (f" | temperature {result['temperature']:.3f}: NLL {scaled['nll']:.4f}, "
                 f"ECE {scaled['ece']:.4f}")
    return line + f" | {result['epochs_completed']} epochs in {result['wall_seconds']:.0f} s"


def main(method, argv=None):
    """Entry point of both scripts: returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = f"label_smoothing_{method.name}.py"
    debug = "--debug" in argv
    args = None
    try:
        args = parse_args(method, argv)
        args.argv = argv
        result = run(method, args)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (DatasetError, TrainingDiverged) as error:
        if debug:
            raise
        one_line = " ".join(str(error).split())  # e.g. tarfile lists one reason per line
        print(f"{prog}: error: {one_line}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        # the backup is on disk; a second Ctrl-C must not turn a clean exit into a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        backup = output_paths(args.plot)["backup"] if args is not None else None
        print(f"\n{prog}: interrupted. "
              + (f"Progress up to the last completed epoch is saved in {backup}; run the same "
                 "command again to resume." if backup and os.path.isdir(backup) else
                 "No epoch had completed, nothing to resume."), file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary_line(result), flush=True)
    return EXIT_OK
