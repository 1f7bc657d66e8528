"""The training core both scripts share: arguments, data, model, training, evaluation, outputs.

A script supplies only a `Method`: how the training targets and the loss are made from the one-hot
labels and the smoothing factor. Everything else, validation and test metrics included, is the
same for both, and validation/test always use hard (unsmoothed) labels.
"""
import argparse
import dataclasses
import datetime
import os
import platform
import shlex
import sys
import time
from typing import Callable

import numpy as np

from pyimagesearch import calibration
from pyimagesearch.cifar10 import CLASS_NAMES, NUM_CLASSES, DatasetError, load_cifar10
from pyimagesearch.outputs import output_paths

# Recipes: every training hyperparameter in one place; a command-line flag overrides its entry.
RECIPES = {
    # The default, tuned for a 2-core CPU after Keller Jordan's airbench (2024); README.md gives
    # its measured time and accuracy, and the 5-epoch probes that chose lr, decay and bias scale.
    "fast": dict(
        model="fast_resnet",    # airbench-style residual net, widths 64/256/256, ~2.0M params
        epochs=14,              # short: the 20-minute budget on 2 cores, not convergence
        batch_size=512,         # 1.06-1.10x the images/s of batch 64 here; few steps, high lr
        lr=0.75,                # peak lr, SGD+Nesterov on mean cross-entropy (5-epoch probes:
                                # 87.6% at 0.75, 87.1% at 0.4)
        schedule="warmup_linear",  # 0.2 * lr rising to lr, then falling to 0.07 * lr
        warmup_fraction=0.23,   # of all steps, as airbench
        momentum=0.85,
        nesterov=True,
        weight_decay=9e-3,      # decoupled: each step scales weights by (1 - lr_t * 9e-3)
                                # (probe: 87.6% vs 87.5% with 5e-3, within noise)
        max_shift=2,            # random translation (px, reflect-padded) + horizontal flips
        tta="flip_translate",   # test-time augmentation: each image, its mirror, and both
                                # moved by one pixel (pipeline.predict_logits)
        whiten_stem=True,       # frozen patch-whitening stem (pyimagesearch/whitening.py)
        bn_momentum=0.4,        # Keras convention: weight of the old running statistics; short
                                # memory, which lookahead needs (airbench's ablations)
        bn_scale=False,         # batch norms learn a shift (beta) only
        lookahead=True,         # airbench's lookahead averaging (callbacks.Lookahead)
        bias_lr_scale=64,       # batch-norm shifts learn 64x faster (optimizer.py; probe:
                                # 88.1% vs 87.6% without)
    ),
    # The 2019 tutorial's setup on the book's ResNet, for reference: ~75 images/s here in float32
    # (README.md), about 12 hours for 70 epochs; not run in full.
    "tutorial": dict(
        model="preact_resnet",  # stages (9, 9, 9), filters (64, 64, 128, 256)
        epochs=70,
        batch_size=64,
        lr=5e-3,
        schedule="polynomial",  # power 1: linear decay to 0
        warmup_fraction=0.0,
        momentum=0.9,
        nesterov=False,
        weight_decay=1e-3,      # the book's L2 5e-4 (gradient 1e-3 * w), applied decoupled
        max_shift=3,            # ImageDataGenerator(width/height_shift_range=0.1) on 32 px
        tta="none",
        whiten_stem=False,
        bn_momentum=0.9,
        bn_scale=True,
        lookahead=False,
        bias_lr_scale=1.0,
    ),
}
DEFAULT_RECIPE = "fast"
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
KERAS_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
DEFAULT_VAL_SIZE = 5000
WHITENING_IMAGES = 5000  # training images whose 2x2 patches set the whitened stem (airbench)


@dataclasses.dataclass(frozen=True)
class Method:
    """Where smoothing happens. `prepare(one_hot, smoothing)` returns the training targets and
    the Keras loss to train them with; the model outputs logits."""

    name: str
    summary: str
    prepare: Callable


class UsageError(Exception):
    """A bad command line: one line on stderr and exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise UsageError(message)


def build_parser(method):
    parser = _Parser(
        prog=f"label_smoothing_{method.name}.py",
        description=f"Train a ResNet on CIFAR-10 with label smoothing: {method.summary}. "
                    "Writes the plot, <stem>_report.txt, <stem>.json, <stem>_calibration.png "
                    "and the trained model <stem>.keras.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--smoothing", type=float, default=0.1, help="label-smoothing factor in [0, 1)")
    add("--plot", default="plot.png", help="training-curve plot; other outputs go beside it")
    add("--dataset", default=None,
        help="cifar-10-python.tar.gz or its cifar-10-batches-py/ folder "
             "(default: keras.datasets.cifar10, which downloads)")
    add("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE,
        help="hyperparameter preset; 'tutorial' is the 2019 setup (70 epochs, batch 64)")
    add("--epochs", type=int, help="epochs (default: the recipe's)")
    add("--batch-size", type=int, help="batch size (default: the recipe's)")
    add("--lr", type=float, help="peak learning rate (default: the recipe's)")
    add("--seed", type=int, default=42, help="random seed for weights, shuffling, augmentation")
    add("--train-size", type=int, help="use only the first N training images (smoke runs)")
    add("--test-size", type=int, help="use only the first N test images (smoke runs)")
    add("--val-size", type=int,
        help=f"training images held out for validation and temperature scaling "
             f"(default: min({DEFAULT_VAL_SIZE}, train images / 10); 0 for none)")
    add("--precision", choices=PRECISIONS, default="auto",
        help="auto: bfloat16 on CPUs/GPUs with fast bf16 units, float32 elsewhere")
    add("--debug", action="store_true", help="show tracebacks for errors")
    return parser


def parse_args(method, argv):
    """Parse and check every argument before any data is loaded; UsageError on a bad one."""
    args = build_parser(method).parse_args(argv)
    recipe = RECIPES[args.recipe]
    for key in ("epochs", "batch_size", "lr"):
        if getattr(args, key) is None:
            setattr(args, key, recipe[key])
    if not 0.0 <= args.smoothing < 1.0:
        raise UsageError(f"--smoothing must be in [0, 1), got {args.smoothing}")
    for flag in ("epochs", "batch_size", "train_size", "test_size"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if not args.lr > 0 or not np.isfinite(args.lr):
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    if args.val_size is not None and args.val_size < 0:
        raise UsageError(f"--val-size must be >= 0, got {args.val_size}")
    if args.train_size is not None and args.val_size is not None \
            and args.val_size >= args.train_size:
        raise UsageError(f"--val-size ({args.val_size}) must be smaller than --train-size "
                         f"({args.train_size})")
    if args.dataset is not None and not os.path.exists(args.dataset):
        raise UsageError(f"--dataset {args.dataset}: no such file or folder")
    _check_plot_path(args.plot)
    return args


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


def detect_precision():
    """'bfloat16' where the hardware runs it fast, else 'float32'. On a CPU that means AVX512-BF16
    or AMX (oneDNN uses them); on a GPU, compute capability 8.0 or newer (untested here)."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        return "bfloat16" if capability and capability >= (8, 0) else "float32"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return precision_for_cpu(handle.read())
    except OSError:
        return "float32"


def precision_for_cpu(cpuinfo):
    """'bfloat16' if /proc/cpuinfo text lists AVX512-BF16 or AMX-BF16, else 'float32'."""
    return "bfloat16" if set(cpuinfo.split()) & {"avx512_bf16", "amx_bf16"} else "float32"


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _device_name():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"GPU ({len(gpus)})"
    return f"CPU ({os.cpu_count()} cores, {cpu_model()})"


def split_data(data, train_size, test_size, val_size):
    """(train, val, test) as (images, labels) pairs: the first `train_size` training images, of
    which the last `val_size` are held out for validation; the first `test_size` test images."""
    for flag, size, available in (("--train-size", train_size, len(data.train_images)),
                                  ("--test-size", test_size, len(data.test_images))):
        if size is not None and size > available:
            raise UsageError(f"{flag} {size}: the dataset has only {available} images")
    train_images, train_labels = data.train_images[:train_size], data.train_labels[:train_size]
    if val_size is None:
        val_size = min(DEFAULT_VAL_SIZE, len(train_images) // 10)
    if val_size >= len(train_images):
        raise UsageError(f"--val-size ({val_size}) must be smaller than the {len(train_images)} "
                         "training images")
    cut = len(train_images) - val_size
    return ((train_images[:cut], train_labels[:cut]),
            (train_images[cut:], train_labels[cut:]),
            (data.test_images[:test_size], data.test_labels[:test_size]))


def build_model(recipe, stem_kernel=None):
    from pyimagesearch import resnet

    if recipe["model"] == "fast_resnet":
        return resnet.build_fast_resnet(num_classes=NUM_CLASSES, stem_kernel=stem_kernel,
                                        bn_momentum=recipe["bn_momentum"],
                                        bn_scale=recipe["bn_scale"])
    if recipe["model"] == "preact_resnet":
        return resnet.build_preact_resnet(num_classes=NUM_CLASSES)
    raise ValueError(f"unknown model '{recipe['model']}'")


def compile_model(recipe, loss, steps_per_epoch, stem_kernel=None):
    """The recipe's model, compiled with SGD on its learning-rate schedule."""
    from pyimagesearch.optimizer import ScaledBiasSGD
    from pyimagesearch.schedule import learning_rate_schedule

    model = build_model(recipe, stem_kernel)
    total_steps = steps_per_epoch * recipe["epochs"]
    schedule = learning_rate_schedule(recipe["schedule"], recipe["lr"], total_steps,
                                      warmup_steps=round(total_steps * recipe["warmup_fraction"]))
    optimizer = ScaledBiasSGD(learning_rate=schedule, momentum=recipe["momentum"],
                              nesterov=recipe["nesterov"], weight_decay=recipe["weight_decay"],
                              bias_lr_scale=recipe["bias_lr_scale"])
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


def evaluate(model, test, val, mean, std, tta):
    """(results for the JSON, classification report text, test confidences): test metrics on hard
    labels before and after temperature scaling fitted on `val` (none without a validation split),
    the report as a dict, and the reliability bins."""
    from sklearn.metrics import classification_report

    from pyimagesearch.pipeline import predict_logits

    (test_images, test_labels), (val_images, val_labels) = test, val
    test_logits = predict_logits(model, test_images, mean, std, tta)
    temperature, scaled = None, None
    if len(val_labels):
        val_logits = predict_logits(model, val_images, mean, std, tta)
        temperature = calibration.fit_temperature(val_logits, val_labels)
        scaled = calibration.calibration_metrics(test_logits, test_labels, temperature)
    probabilities = calibration.softmax(test_logits)
    predictions = probabilities.argmax(axis=1)
    report = dict(y_true=test_labels, y_pred=predictions, labels=list(range(NUM_CLASSES)),
                  target_names=list(CLASS_NAMES), zero_division=0)
    bins = calibration.reliability_bins(probabilities, test_labels)
    metrics = calibration.calibration_metrics(test_logits, test_labels)
    results = {
        "test_accuracy": metrics["accuracy"],
        "test_metrics": metrics,
        "temperature": temperature,
        "test_metrics_temperature_scaled": scaled,
        "reliability_bins": {"count": bins[0].tolist(), "mean_confidence": bins[1].tolist(),
                             "accuracy": bins[2].tolist()},
        "classification_report": classification_report(output_dict=True, **report),
    }
    return results, classification_report(digits=4, **report), probabilities.max(axis=1)


def library_versions():
    import keras
    import matplotlib
    import sklearn
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__}


def run(method, args):
    """Train and evaluate one run; returns the result dict written to `<stem>.json`."""
    started = time.perf_counter()
    import keras

    from pyimagesearch import callbacks, outputs, pipeline, whitening

    recipe = dict(RECIPES[args.recipe], epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    paths = output_paths(args.plot)
    run_config = {"method": method.name, **{key: value for key, value in vars(args).items()
                                            if key not in ("debug", "precision", "argv")}}
    check_backup_matches(paths["backup"], run_config)

    data = load_cifar10(args.dataset)
    train, val, test = split_data(data, args.train_size, args.test_size, args.val_size)
    (train_images, train_labels), (val_images, val_labels) = train, val

    precision = detect_precision() if args.precision == "auto" else args.precision
    keras.mixed_precision.set_global_policy(KERAS_POLICIES[precision])
    keras.utils.set_random_seed(args.seed)

    mean, std = pipeline.channel_stats(train_images)  # training images only
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[train_labels]
    targets, loss = method.prepare(one_hot, args.smoothing)  # the only per-method step
    train_dataset = pipeline.training_dataset(train_images, targets, recipe["batch_size"], mean,
                                              std, recipe["max_shift"], args.seed)
    stem_kernel = None
    if recipe["whiten_stem"]:
        sample = pipeline.normalize(train_images[:WHITENING_IMAGES], mean, std).numpy()
        stem_kernel = whitening.patch_whitening_kernel(sample)
    steps_per_epoch = -(-len(train_images) // recipe["batch_size"])
    model = compile_model(recipe, loss, steps_per_epoch, stem_kernel)
    device = _device_name()
    print(f"data: {data.source}: {len(train_images):,} train / {len(val_images):,} val / "
          f"{len(test[1]):,} test images | model: {recipe['model']}, "
          f"{model.count_params():,} params | device: {device} | precision: {precision} "
          f"| method: {method.name} ({method.summary}), smoothing {args.smoothing}, "
          f"recipe {args.recipe}, {recipe['epochs']} epochs", flush=True)

    fit_callbacks, guard, history = callbacks.training_callbacks(
        val_images, val_labels, mean, std, paths["backup"], run_config,
        lookahead_steps=steps_per_epoch * recipe["epochs"] if recipe["lookahead"] else None)
    model.fit(train_dataset, epochs=recipe["epochs"], callbacks=fit_callbacks, shuffle=False,
              verbose=1 if sys.stdout.isatty() else 2)

    result = {
        "method": method.name, "method_summary": method.summary,
        "command": shlex.join(["python", f"label_smoothing_{method.name}.py", *args.argv]),
        "args": {key: value for key, value in vars(args).items() if key != "argv"},
        "recipe": recipe, "precision": precision, "device": device,
        "data": {"source": data.source, "train_images": len(train_images),
                 "val_images": len(val_images), "test_images": len(test[1])},
        # the saved model takes images standardised with these training-set statistics
        "normalization": {"mean": mean.tolist(), "std": std.tolist()},
        "history": {key: [epoch.get(key) for epoch in history.history]
                    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")},
        "diverged": guard.diverged_at is not None,
        # a diverged run's last history entry is the epoch it stopped in, not a completed one
        "epochs_completed": len(history.history) - (guard.diverged_at is not None),
        "versions": library_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    title = (f"{method.name}: smoothing {args.smoothing}, {recipe['model']}, "
             f"{len(history.history)} epochs")
    if result["diverged"]:
        result["wall_seconds"] = time.perf_counter() - started
        outputs.write_json(paths["json"], result)
        outputs.plot_history(paths["plot"], result["history"], title + " (DIVERGED)")
        raise TrainingDiverged(f"training diverged in epoch {len(history.history)}, batch "
                               f"{guard.diverged_at + 1} (loss became NaN or infinite); try a "
                               f"smaller --lr. Partial results: {paths['json']}")

    evaluation, report_text, confidences = evaluate(model, test, val, mean, std,
                                                    recipe["tta"])
    result.update(evaluation)
    print(report_text)
    outputs.write_text(paths["report"], report_text)
    outputs.save_model(paths["model"], model)
    outputs.plot_history(paths["plot"], result["history"], title)
    bins = result["reliability_bins"]
    outputs.plot_calibration(paths["calibration"],
                             (bins["count"], bins["mean_confidence"], bins["accuracy"]),
                             confidences, result["test_metrics"]["ece"], title)
    result["wall_seconds"] = time.perf_counter() - started
    outputs.write_json(paths["json"], result)
    return result


def check_backup_matches(backup_folder, run_config):
    """A backup from a different command must not be resumed silently."""
    from pyimagesearch.callbacks import saved_run_config

    saved_config = saved_run_config(backup_folder)
    if saved_config is None or saved_config == run_config:
        return
    changed = sorted(key for key in set(saved_config) | set(run_config)
                     if saved_config.get(key) != run_config.get(key))
    raise UsageError(f"{backup_folder} holds an interrupted run with different settings "
                     f"({', '.join(changed)}); rerun that command to resume it, or delete "
                     "the folder to start afresh")


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; partial results were written."""


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
    try:
        args = parse_args(method, argv)
        args.argv = argv
        result = run(method, args)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except (DatasetError, TrainingDiverged) as error:
        if debug:
            raise
        one_line = " ".join(str(error).split())  # e.g. tarfile lists one reason per line
        print(f"{prog}: error: {one_line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        backup = output_paths(args.plot)["backup"] if "args" in locals() else None
        print(f"\n{prog}: interrupted. "
              + (f"Progress up to the last completed epoch is saved in {backup}; run the same "
                 "command again to resume." if backup and os.path.isdir(backup) else
                 "No epoch had completed, nothing to resume."), file=sys.stderr)
        return 130
    print(summary_line(result), flush=True)
    return 0
