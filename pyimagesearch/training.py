"""One run, the same for both scripts: data -> model -> fit -> evaluate -> outputs.

A script supplies only a `config.Method`: how the training targets and the loss are made from the one-hot
labels and the smoothing factor. Everything else, validation and test metrics included, is the
same for both, and validation and test always use hard (unsmoothed) labels. Where the run
executes (devices, processes) is `placement.Placement`'s business; its settings are a
`config.RunConfig`.
"""
import contextlib
import datetime
import sys

import keras
import numpy as np

from pyimagesearch import (backup, callbacks, distillation, hardware, signals, whitening,
                           writing)
from pyimagesearch.batches import pad_to_whole_batches
from pyimagesearch.cifar10 import NUM_CLASSES, load_cifar10, split_data
from pyimagesearch.errors import TrainingDiverged, UsageError
from pyimagesearch.evaluation import evaluate, prediction_batch_size
from pyimagesearch.model import (build_models, channel_stats, compile_model, normalize,
                                 with_builtin_layers)
from pyimagesearch.phases import Phases
from pyimagesearch.placement import Placement
from pyimagesearch.runlock import OutputLock

WHITENING_IMAGES = 5000  # training images whose 2x2 patches set the whitened stem (airbench)


def run(method, config):
    """Train and evaluate one run of `method` with the settings of `config`; returns the result
    dict written to `<stem>.json`."""
    if config.repeatable and not hardware.make_repeatable():
        print("warning: the backend started before this run could make it repeatable; its "
              "numbers may differ from a rerun's in the last bits", file=sys.stderr, flush=True)
    phases, compiles = Phases(), hardware.CompileCounter()
    hardware.use_compile_cache(config.compile_cache)
    paths = config.paths
    # one run per set of outputs: taken before a backup is read or anything written
    with OutputLock(paths["lock"], config.command) if config.writes else contextlib.nullcontext() \
            as lock:
        if lock is not None and lock.note:
            print(lock.note, file=sys.stderr, flush=True)
        epochs_done = backup.check_matches(paths["backup"], config.identity())
        placement = Placement.start(config)
        placement.check_resume(paths["backup"], epochs_done)
        with phases("load"):
            data = load_cifar10(config.dataset)
            train, val, test = split_data(data, config.train_size, config.test_size,
                                          config.val_size)
        precision = hardware.detect_precision() if config.precision == "auto" \
            else config.precision
        keras.mixed_precision.set_global_policy(hardware.KERAS_POLICIES[precision])
        keras.utils.set_random_seed(config.seed)
        print(f"backend: {hardware.backend()} | {placement.describe()} | precision: "
              f"{precision}", flush=True)
        with placement.scope():  # build, compile and train on the placement's devices
            with phases("build"):
                batches, training_model, inference_model = _build(method, config, placement,
                                                                  train)
            print(f"data: {data.source}: {len(train[1]):,} train / {len(val[1]):,} val / "
                  f"{len(test[1]):,} test images | model: {config.recipe['model']}, "
                  f"{inference_model.count_params():,} params | method: {method.name} "
                  f"({method.summary}), smoothing {config.smoothing}, recipe "
                  f"{config.recipe_name}, {config.recipe['epochs']} epochs", flush=True)
            predictor = placement.predictor(inference_model)
            predict_batch_size = prediction_batch_size(len(val[1]), len(test[1]))
            fit_callbacks, guard, history = callbacks.training_callbacks(
                predictor, val, paths, config.identity(), config.recipe, batches.steps,
                predict_batch_size, writes=placement.writes, tensorboard=config.tensorboard)
            with phases("fit"):
                epochs = config.recipe["epochs"]
                training_model.fit(**placement.fit_data(batches, max(epochs_done, 0), epochs),
                                   epochs=epochs, callbacks=fit_callbacks,
                                   verbose=_verbosity(placement))
        inference_model = placement.finish(training_model, inference_model, predictor)
        phases.split_fit(history.history[max(epochs_done, 0):])

        result = _result(method, config, placement, precision, data, (train, val, test),
                         history.history, guard.diverged_in_epoch)
        if result["diverged"]:
            _report_divergence(placement, paths, result, phases, compiles,
                               guard.diverged_in_epoch)
        signals.raise_if_stopped()  # one a finaliser swallowed: see signals.py
        with phases("evaluation"):
            evaluation, report_text = evaluate(inference_model, test, val, config.recipe["tta"],
                                               predict_batch_size)
        result.update(evaluation)
        result.update(phases=phases.as_json(), wall_seconds=phases.total(),
                      compiles=compiles.as_json())
        signals.raise_if_stopped()
        if placement.writes:  # the others, with the same numbers, stay quiet
            print(report_text)
            writing.write_run_outputs(paths, result, report_text,
                                      with_builtin_layers(inference_model),
                                      phases, config.script)
    return result


def _build(method, config, placement, train):
    """(the WholeBatches this process trains on, the compiled training model, the inference
    model)."""
    recipe = config.recipe
    train_images, train_labels = train
    mean, std = channel_stats(train_images)  # training images only, all of them in every process
    # this process's shard (all of them when it is the only one) and its share of each batch
    shard_images, shard_labels = placement.shard(train_images), placement.shard(train_labels)
    batch_size = placement.shard_batch_size(recipe["batch_size"])
    if len(shard_images) < batch_size:
        raise UsageError(f"--batch-size {recipe['batch_size']}: the {len(train_images):,} "
                         "training images make no whole batch")
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[shard_labels]
    targets, loss = method.prepare(one_hot, config.smoothing)  # the only per-method step
    if config.teacher:  # its logits on these images, computed once (distillation.py)
        targets, loss = distillation.distill(
            targets, loss, distillation.teacher_logits(config.teacher, shard_images),
            config.distill_temperature, config.distill_weight)
    batches = pad_to_whole_batches(shard_images, targets, batch_size, config.seed)
    stem_kernel = None
    if recipe["whiten_stem"]:
        stem_kernel = whitening.patch_whitening_kernel(
            normalize(train_images[:WHITENING_IMAGES], mean, std))
    training_model, inference_model = build_models(recipe, mean, std, stem_kernel, config.seed)
    compile_model(training_model, recipe, loss, batches.steps, config.steps_per_execution,
                  config.jit_compile)
    placement.prepare(training_model)
    return batches, training_model, inference_model


def _verbosity(placement):
    """Keras' progress bar in a terminal, a line an epoch in a log, nothing from non-chiefs."""
    if not placement.writes:
        return 0
    return 1 if sys.stdout.isatty() else 2


def _result(method, config, placement, precision, data, split, history, diverged_in_epoch):
    """What the JSON says of the run before its evaluation."""
    train, val, test = split
    diverged = diverged_in_epoch is not None
    return {
        "method": method.name, "method_summary": method.summary, "command": config.command,
        "args": config.args(), "recipe": dict(config.recipe),
        "teacher": distillation.teacher_record(config.teacher) if config.teacher else None,
        "precision": precision,
        "backend": hardware.backend(), **placement.as_json(),
        "data": {"source": data.source, "train_images": len(train[1]),
                 "val_images": len(val[1]), "test_images": len(test[1])},
        "history": {key: [epoch.get(key) for epoch in history]
                    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")},
        "diverged": diverged,
        # a diverged run's last history entry is the epoch it stopped in, not a completed one
        "epochs_completed": len(history) - diverged,
        "versions": hardware.library_versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _report_divergence(placement, paths, result, phases, compiles, epoch):
    result.update(phases=phases.as_json(), wall_seconds=phases.total(),
                  compiles=compiles.as_json())
    if placement.writes:
        writing.write_diverged_outputs(paths, result)
    raise TrainingDiverged(f"training diverged in epoch {epoch + 1} (its mean loss is NaN or "
                           f"infinite); try a smaller --lr. Partial results: {paths['json']}")
