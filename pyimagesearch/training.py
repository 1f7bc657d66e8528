"""One run, the same for both scripts: data -> model -> fit -> evaluate -> outputs.

A script supplies only a `Method`: how the training targets and the loss are made from the one-hot
labels and the smoothing factor. Everything else, validation and test metrics included, is the
same for both, and validation and test always use hard (unsmoothed) labels.
"""
import contextlib
import dataclasses
import datetime
import shlex
import sys
import time
from typing import Callable

import keras
import numpy as np

from pyimagesearch import callbacks, hardware, outputs, processes, whitening
from pyimagesearch.cifar10 import NUM_CLASSES, load_cifar10, split_data
from pyimagesearch.errors import TrainingDiverged, UsageError
from pyimagesearch.evaluation import evaluate
from pyimagesearch.model import (build_models, channel_stats, compile_model, normalize,
                                 synchronize_batch_norms)
from pyimagesearch.recipes import FLAG_OVERRIDES, RECIPES

WHITENING_IMAGES = 5000  # training images whose 2x2 patches set the whitened stem (airbench)


@dataclasses.dataclass(frozen=True)
class Method:
    """Where smoothing happens. `prepare(one_hot, smoothing)` returns the training targets and
    the Keras loss to train them with; the model outputs logits."""

    name: str
    summary: str
    prepare: Callable


def run(method, args):
    """Train and evaluate one run (`args` as `cli.parse_args` returns them); returns the result
    dict written to `<stem>.json`."""
    started = time.perf_counter()
    recipe = dict(RECIPES[args.recipe], **{key: getattr(args, key) for key in FLAG_OVERRIDES})
    paths = outputs.output_paths(args.plot)
    # what a resumed run must repeat; which process this is and where the job meets may change
    run_config = {"method": method.name, **{
        key: value for key, value in vars(args).items()
        if key not in ("debug", "precision", "argv", "process_id", "coordinator")}}
    check_backup_matches(paths["backup"], run_config)
    try:
        group = processes.join(args.coordinator, args.num_processes, args.process_id)
    except ValueError as error:
        raise UsageError(f"--num-processes {args.num_processes}: {error}") from None
    try:
        device_names = choose_devices(args.data_parallel, group.several)
        # 'on' uses Keras' distribution even on one device: the same code path as on several
        parallel = len(device_names) > 1 or args.data_parallel == "on"
        scope = hardware.data_parallel(device_names) if parallel else contextlib.nullcontext()
    except ValueError as error:
        raise UsageError(f"--data-parallel {args.data_parallel}: {error}") from None
    if parallel and args.batch_size % len(device_names):
        raise UsageError(f"--batch-size {args.batch_size} must divide evenly between the "
                         f"{len(device_names)} devices ({', '.join(device_names)})")
    try:
        processes.check_resume_agrees(group, callbacks.saved_epochs(paths["backup"]))
    except ValueError as error:
        raise UsageError(f"{paths['backup']}: {error}") from None

    data = load_cifar10(args.dataset)
    train, val, test = split_data(data, args.train_size, args.test_size, args.val_size)
    (train_images, train_labels), (val_images, val_labels) = train, val

    precision = hardware.detect_precision() if args.precision == "auto" else args.precision
    keras.mixed_precision.set_global_policy(hardware.KERAS_POLICIES[precision])
    keras.utils.set_random_seed(args.seed)

    mean, std = channel_stats(train_images)  # training images only, all of them in every process
    # this process's shard (all of them when it is the only one) and its share of each batch
    shard_images, shard_labels = (processes.shard(array, group)
                                  for array in (train_images, train_labels))
    shard_batch_size = recipe["batch_size"] // group.count
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[shard_labels]
    targets, loss = method.prepare(one_hot, args.smoothing)  # the only per-method step
    stem_kernel = None
    if recipe["whiten_stem"]:
        stem_kernel = whitening.patch_whitening_kernel(
            normalize(train_images[:WHITENING_IMAGES], mean, std))
    backend, device_summary = hardware.backend(), hardware.device_summary()
    print(f"backend: {backend} | devices: {', '.join(device_names)} "
          f"({device_summary}{', data-parallel' if parallel else ''}"
          f"{f', process {group.index} of {group.count}' if group.several else ''}) "
          f"| precision: {precision}", flush=True)
    steps_per_epoch = -(-len(shard_images) // shard_batch_size)
    with scope:  # the models are built, compiled and trained on `device_names`
        training_model, inference_model = build_models(recipe, mean, std, stem_kernel,
                                                       args.seed)
        compile_model(training_model, recipe, loss, steps_per_epoch, args.steps_per_execution)
        if parallel and backend == "tensorflow":
            synchronize_batch_norms(training_model)  # whole-batch statistics, as on one device
        print(f"data: {data.source}: {len(train_images):,} train / {len(val_images):,} val / "
              f"{len(test[1]):,} test images | model: {recipe['model']}, "
              f"{inference_model.count_params():,} params | method: {method.name} "
              f"({method.summary}), smoothing {args.smoothing}, recipe {args.recipe}, "
              f"{recipe['epochs']} epochs", flush=True)
        # predictions of a model trained across processes cannot be read back; a local copy's can
        predictor = processes.LocalMirror(inference_model) if group.several else inference_model
        fit_callbacks, guard, history = callbacks.training_callbacks(
            predictor, val_images, val_labels, paths["backup"], run_config, recipe["epochs"],
            steps_per_epoch, lookahead=recipe["lookahead"], chief=group.chief)
        training_model.fit(shard_images, targets, batch_size=shard_batch_size,
                           epochs=recipe["epochs"], shuffle=True, callbacks=fit_callbacks,
                           verbose=0 if not group.chief else 1 if sys.stdout.isatty() else 2)
    synchronize_batch_norms(training_model, False)  # a TensorFlow-only flag; see its docstring
    if group.several:  # evaluate and save the local copy, outside the distribution
        keras.distribution.set_distribution(None)
        inference_model = predictor.refreshed()

    diverged = guard.diverged_in_epoch is not None
    result = {
        "method": method.name, "method_summary": method.summary,
        "command": shlex.join(["python", f"label_smoothing_{method.name}.py", *args.argv]),
        "args": {key: value for key, value in vars(args).items() if key != "argv"},
        "recipe": recipe, "precision": precision, "backend": backend, "devices": device_names,
        "data_parallel": parallel, "processes": group.count,
        "device": device_summary,
        "data": {"source": data.source, "train_images": len(train_images),
                 "val_images": len(val_images), "test_images": len(test[1])},
        "history": {key: [epoch.get(key) for epoch in history.history]
                    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")},
        "diverged": diverged,
        # a diverged run's last history entry is the epoch it stopped in, not a completed one
        "epochs_completed": len(history.history) - diverged,
        "versions": hardware.library_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    title = (f"{method.name}: smoothing {args.smoothing}, {recipe['model']}, "
             f"{len(history.history)} epochs")
    if diverged:
        result["wall_seconds"] = time.perf_counter() - started
        if group.chief:
            outputs.write_json(paths["json"], result)
            outputs.plot_history(paths["plot"], result["history"], title + " (DIVERGED)")
        raise TrainingDiverged(f"training diverged in epoch {guard.diverged_in_epoch + 1} (its "
                               f"mean loss is NaN or infinite); try a smaller --lr. Partial "
                               f"results: {paths['json']}")

    evaluation, report_text, confidences = evaluate(inference_model, test, val, recipe["tta"])
    result.update(evaluation)
    result["wall_seconds"] = time.perf_counter() - started
    if not group.chief:  # the chief, with the same numbers, writes them
        return result
    print(report_text)
    outputs.write_text(paths["report"], report_text)
    outputs.save_model(paths["model"], inference_model)
    outputs.plot_history(paths["plot"], result["history"], title)
    bins = result["reliability_bins"]
    outputs.plot_calibration(paths["calibration"],
                             (bins["count"], bins["mean_confidence"], bins["accuracy"]),
                             confidences, result["test_metrics"]["ece"], title)
    result["wall_seconds"] = time.perf_counter() - started
    outputs.write_json(paths["json"], result)
    return result


def choose_devices(data_parallel, several_processes=False):
    """The devices to train on, by `--data-parallel`: 'off' the first one Keras lists (a GPU
    where there is one), 'on' all of them, 'auto' all GPUs/TPUs when there are several. With
    several processes, every device of every process, unless 'off' (a ValueError)."""
    if several_processes:
        if data_parallel == "off":
            raise ValueError("several processes always train data-parallel")
        return hardware.devices()
    if data_parallel == "on":
        hardware.check_data_parallel_support()
        return hardware.devices()
    accelerators = hardware.accelerators()
    if data_parallel == "auto" and len(accelerators) > 1:
        return accelerators
    return hardware.devices()[:1]


def check_backup_matches(backup_folder, run_config):
    """A backup from a different command must not be resumed silently."""
    saved_config = callbacks.saved_run_config(backup_folder)
    if saved_config is None or saved_config == run_config:
        return
    changed = sorted(key for key in set(saved_config) | set(run_config)
                     if saved_config.get(key) != run_config.get(key))
    raise UsageError(f"{backup_folder} holds an interrupted run with different settings "
                     f"({', '.join(changed)}); rerun that command to resume it, or delete "
                     "the folder to start afresh")
