"""Steady-state training throughput: this project's input pipeline versus the 2019 tutorial's.

    python bench/throughput.py                          # ~4 min on 2 cores, random uint8 images
    python bench/throughput.py --dataset /path/to/cifar-10-python.tar.gz --seconds 20

Every row trains the same model (the "fast" recipe's fast_resnet, freshly built per row) with the
same optimizer and loss through `model.fit`; rows differ only in input pipeline, precision and
batch size:

  (a)  this project: `pipeline.training_dataset` (one tf.gather per batch, batched translate+flip
       on tensors), precision from `training.detect_precision()` (mixed_bfloat16 on AVX512-BF16);
  (b)  the 2019 pipeline: Keras' old ImageDataGenerator done by hand, image by image in
       Python/numpy/scipy (random shift of up to 10% with nearest fill, random horizontal flip,
       mean-image subtraction), fed through a `keras.utils.PyDataset`, float32.

(a) and (b) are both measured at batch 64 (the tutorial's), then (a) at the recipe's batch size.
If the --budget allows, (a') repeats (a) in the other precision (float32 when auto picks bfloat16),
first at the recipe's batch size (precision effect), then at batch 64 (so (a')/(b) is the effect
of the pipeline alone). Last, both pipelines are timed alone, with no model.

Each row runs `--warmup` steps first (tracing, thread pools, queues), then times steps until
`--seconds` have passed (or exactly `--steps` steps). Throughput = timed images / timed seconds.
"""
import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

# Peak fp32 rate of this machine, the denominator of the "% fp32 peak" column:
# 2 cores x 2.6 GHz x 64 fp32 FLOPs/cycle (two 512-bit FMA units: 2 x 16 lanes x 2 FLOPs)
# = 332.8 GFLOP/s. bfloat16 rows are also quoted against this fp32 peak. It is nominal: 2.6 GHz is
# the clock /proc/cpuinfo reports, and cores that boost above it can exceed 100%.
PEAK_FP32_FLOPS = 2 * 2.6e9 * 64

TUTORIAL_BATCH = 64       # the 2019 tutorial's batch size
TUTORIAL_SHIFT = 0.1      # ImageDataGenerator(width_shift_range=0.1, height_shift_range=0.1)
RECIPE = "fast"           # its model, optimizer and schedule, as training.compile_model builds them
LABEL_SMOOTHING = 0.1


# ----------------------------------------------------------------------------- arguments

def build_parser():
    parser = argparse.ArgumentParser(
        prog="bench/throughput.py",
        description="Steady-state training throughput (images/s) of this project's tf.data "
                    "pipeline + auto precision versus the 2019 per-image Python augmentation, "
                    "on the same model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--seconds", type=float, default=30.0,
        help="timed seconds per row, after the warm-up steps")
    add("--steps", type=int, default=None,
        help="time exactly this many steps per row instead of --seconds")
    add("--warmup", type=int, default=3,
        help="untimed steps per row before timing starts (the first one traces the graph)")
    add("--dataset", default=None,
        help="cifar-10-python.tar.gz or its cifar-10-batches-py/ folder; default: random uint8 "
             "images from a seeded RNG")
    add("--images", type=int, default=50000,
        help="number of random images when --dataset is not given")
    add("--seed", type=int, default=0, help="seed for the data, weights and augmentation")
    add("--budget", type=float, default=300.0,
        help="total seconds; each optional row (the other precision at the recipe's batch size, "
             "then at batch 64) is skipped if it would not fit (0: skip both)")
    return parser


def parse_args(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error(f"--seconds must be positive, got {args.seconds}")
    if args.steps is not None and args.steps <= 0:
        parser.error(f"--steps must be positive, got {args.steps}")
    if args.warmup < 1:
        parser.error(f"--warmup must be at least 1 (the tracing step), got {args.warmup}")
    if args.images < TUTORIAL_BATCH:
        parser.error(f"--images must be at least {TUTORIAL_BATCH}, got {args.images}")
    if args.budget < 0:
        parser.error(f"--budget must be >= 0, got {args.budget}")
    if args.dataset is not None and not os.path.exists(args.dataset):
        parser.error(f"--dataset {args.dataset}: no such file or folder")
    return args


# ----------------------------------------------------------------------------- FLOPs

def forward_flops(model):
    """Forward FLOPs per image, counted from the layers: a multiply-add is 2 FLOPs; per Conv2D
    2*k_h*k_w*c_in*c_out*H_out*W_out (c_in per group), per Dense 2*in*out per position. Biases,
    BatchNorm, activations, pooling and additions are not counted (they are < 1% here)."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            k_h, k_w, c_in, c_out = layer.kernel.shape
            shape = layer.output.shape
            height, width = (shape[2], shape[3]) if layer.data_format == "channels_first" \
                else (shape[1], shape[2])
            total += 2 * k_h * k_w * c_in * c_out * height * width
        elif isinstance(layer, keras.layers.Dense):
            fan_in, fan_out = layer.kernel.shape
            positions = int(np.prod(layer.output.shape[1:-1], dtype=np.int64))
            total += 2 * fan_in * fan_out * positions
    return int(total)


# ----------------------------------------------------------------------------- the pipelines

def project_dataset(images, one_hot, batch_size, max_shift, seed):
    """(a) This project's training pipeline, repeated so a run can take any number of steps.
    The images are cut to a whole number of batches: a short last batch would be counted as a
    full one and would retrace the training step for its shape."""
    from pyimagesearch import pipeline

    whole = len(images) - len(images) % batch_size
    images, one_hot = images[:whole], one_hot[:whole]
    mean, std = pipeline.channel_stats(images)
    return pipeline.training_dataset(images, one_hot, batch_size, mean, std, max_shift,
                                     seed).repeat()


def shift_flip_2019(image, rng, shift_range=TUTORIAL_SHIFT):
    """One image the way ImageDataGenerator(width_shift_range=0.1, height_shift_range=0.1,
    horizontal_flip=True, fill_mode="nearest") transformed it: a sub-pixel shift drawn from
    U(-0.1, 0.1) x size per axis, applied per channel by scipy.ndimage.affine_transform (order 1,
    nearest fill), then a left-right flip with probability 1/2. `image` float32 (H, W, C)."""
    from scipy import ndimage

    height, width = image.shape[:2]
    shift_rows = rng.uniform(-shift_range, shift_range) * height
    shift_cols = rng.uniform(-shift_range, shift_range) * width
    flip = rng.uniform() < 0.5
    matrix, offset = np.eye(2), np.array([shift_rows, shift_cols])
    channels = [ndimage.affine_transform(image[:, :, channel], matrix, offset, order=1,
                                         mode="nearest", cval=0.0)
                for channel in range(image.shape[2])]
    image = np.stack(channels, axis=-1)
    return image[:, ::-1, :] if flip else image


def tutorial_dataset(images, one_hot, batch_size, seed):
    """(b) The 2019 pipeline: an infinite keras.utils.PyDataset whose __getitem__ loops over the
    images of a batch in Python (mean-image subtraction, shift, flip), one worker thread, as
    `fit_generator(ImageDataGenerator.flow(...))` did. The mean image is of the training images,
    as in the tutorial (`trainX -= np.mean(trainX, axis=0)`)."""
    import keras

    mean_image = images.mean(axis=0, dtype=np.float64).astype(np.float32)

    class PerImageAugmentation(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False, max_queue_size=10)
            self.rng = np.random.default_rng(seed)
            self.batches_per_epoch = len(images) // batch_size
            self.order = self.rng.permutation(len(images))

        @property
        def num_batches(self):
            return None  # infinite: model.fit's steps_per_epoch decides the length

        def __getitem__(self, index):
            index %= self.batches_per_epoch
            if index == 0:  # a new pass over the data: reshuffle, like the old Iterator
                self.order = self.rng.permutation(len(images))
            chosen = self.order[index * batch_size:(index + 1) * batch_size]
            batch = np.zeros((len(chosen),) + images.shape[1:], dtype=np.float32)
            for row, source in enumerate(chosen):
                image = images[source].astype(np.float32) - mean_image
                batch[row] = shift_flip_2019(image, self.rng)
            return batch, one_hot[chosen]

    return PerImageAugmentation()


# ----------------------------------------------------------------------------- one row

def measure(pipeline_name, precision, batch_size, images, one_hot, args):
    """Build a fresh model under `precision`, train it on the named pipeline; returns a dict with
    the timed steps, seconds and images/s, and the model's forward FLOPs per image."""
    import keras

    from pyimagesearch import training

    recipe = training.RECIPES[RECIPE]
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(training.KERAS_POLICIES[precision])
    keras.utils.set_random_seed(args.seed)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=LABEL_SMOOTHING)
    # the recipe's schedule stretched over more steps than are run: the lr does not change the cost
    # of a step, and the model is built and compiled exactly as the training scripts do it
    model = training.compile_model(dict(recipe, epochs=1), loss, steps_per_epoch=10 ** 7)

    if pipeline_name == "project":
        dataset = project_dataset(images, one_hot, batch_size, recipe["max_shift"], args.seed)
    else:
        dataset = tutorial_dataset(images, one_hot, batch_size, args.seed)

    class StepTimer(keras.callbacks.Callback):
        """Starts the clock after `warmup` steps, stops training after `steps` timed steps or
        `seconds` timed seconds. Reading the loss forces the step to have finished."""

        def __init__(self):
            super().__init__()
            self.done, self.start, self.end, self.timed = 0, None, None, 0

        def on_train_batch_end(self, batch, logs=None):
            float((logs or {}).get("loss", 0.0))
            now = time.perf_counter()
            self.done += 1
            if self.done == args.warmup:
                self.start = now
                return
            if self.start is None:
                return
            self.timed = self.done - args.warmup
            finished = (self.timed >= args.steps if args.steps is not None
                        else now - self.start >= args.seconds)
            if finished:
                self.end = now
                self.model.stop_training = True

    timer = StepTimer()
    limit = args.warmup + (args.steps if args.steps is not None else 10 ** 7)
    model.fit(dataset, epochs=1, steps_per_epoch=limit, callbacks=[timer], shuffle=False,
              verbose=0)
    if timer.end is None:
        raise RuntimeError(f"{pipeline_name}: training stopped after {timer.done} steps, before "
                           "the timed steps were complete")
    seconds = timer.end - timer.start
    result = dict(steps=timer.timed, seconds=seconds,
                  images_per_second=timer.timed * batch_size / seconds,
                  forward_flops=forward_flops(model), params=model.count_params())
    del model, dataset
    return result


def pipeline_alone(pipeline_name, images, one_hot, batch_size, seed, batches=40):
    """Images/s of an input pipeline with no model: the tf.data one iterated (its parallel map
    may use both cores), the 2019 one called batch by batch in this thread (as its one worker)."""
    from pyimagesearch import training

    if pipeline_name == "project":
        iterator = iter(project_dataset(images, one_hot, batch_size,
                                        training.RECIPES[RECIPE]["max_shift"], seed))
        for _ in range(3):
            next(iterator)
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
    else:
        dataset = tutorial_dataset(images, one_hot, batch_size, seed)
        dataset[0]
        start = time.perf_counter()
        for index in range(1, batches + 1):
            dataset[index]
    return batches * batch_size / (time.perf_counter() - start)


# ----------------------------------------------------------------------------- output

def load_average():
    try:
        return "{:.2f}".format(os.getloadavg()[0])
    except OSError:
        return "n/a"


LABELS = {"project": "tf.data batched (this project)",
          "tutorial": "per-image Python (2019 IDG)"}
COLUMNS = ("row  {:<31} {:<14} {:>5} {:>5} {:>6} {:>8} {:>9} {:>9} {:>7}"
           .format("pipeline", "precision", "batch", "steps", "time_s", "img/s",
                   "fwd_GF/im", "train_GF/s", "%peak"))


def format_row(name, config, result):
    from pyimagesearch.training import KERAS_POLICIES

    train_flops = 3 * result["forward_flops"] * result["images_per_second"]
    return ("{:<4} {:<31} {:<14} {:>5} {:>5} {:>6.1f} {:>8.1f} {:>9.3f} {:>9.1f} {:>6.1f}%"
            .format(name, LABELS[config["pipeline"]], KERAS_POLICIES[config["precision"]],
                    config["batch"], result["steps"], result["seconds"],
                    result["images_per_second"], result["forward_flops"] / 1e9,
                    train_flops / 1e9, 100 * train_flops / PEAK_FP32_FLOPS))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    started = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from pyimagesearch import training
    from pyimagesearch.cifar10 import NUM_CLASSES, DatasetError, load_cifar10

    if args.dataset is not None:
        try:
            data = load_cifar10(args.dataset)
        except DatasetError as error:
            print(f"bench/throughput.py: error: {error}", file=sys.stderr)
            return 1
        images, labels = data.train_images, data.train_labels
        data_text = f"CIFAR-10 train, {len(images):,} images ({data.source})"
    else:
        rng = np.random.default_rng(args.seed)
        images = rng.integers(0, 256, size=(args.images, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, NUM_CLASSES, size=args.images)
        data_text = f"random uint8 {args.images:,}x32x32x3 (seed {args.seed})"
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]

    auto = training.detect_precision()
    other = "float32" if auto != "float32" else "bfloat16"
    recipe_batch = training.RECIPES[RECIPE]["batch_size"]
    # The first three rows always run; the last two (precision effect at the recipe's batch size,
    # pipeline-only effect at batch 64) only while the --budget allows.
    rows = [("(a)", dict(pipeline="project", precision=auto, batch=TUTORIAL_BATCH)),
            ("(b)", dict(pipeline="tutorial", precision="float32", batch=TUTORIAL_BATCH)),
            ("(a)", dict(pipeline="project", precision=auto, batch=recipe_batch)),
            ("(a')", dict(pipeline="project", precision=other, batch=recipe_batch,
                          optional=True)),
            ("(a')", dict(pipeline="project", precision=other, batch=TUTORIAL_BATCH,
                          optional=True))]

    duration = (f"{args.steps} timed steps" if args.steps is not None
                else f"{args.seconds:g} s timed")
    print(f"# {datetime.datetime.now().astimezone().isoformat(timespec='seconds')} | "
          f"CPU: {training.cpu_model()} x {os.cpu_count()} cores | TensorFlow {tf.__version__} | "
          f"Keras {keras.__version__} | Python {platform.python_version()} | "
          f"1-min load before: {load_average()}")
    print(f"# model {training.RECIPES[RECIPE]['model']} (recipe '{RECIPE}', built and compiled "
          f"by training.compile_model), fresh per row; CE(label_smoothing={LABEL_SMOOTHING}); "
          f"data: {data_text}; "
          f"{args.warmup} warm-up steps then {duration} per row; auto precision: {auto}")
    print(f"# FLOPs: forward = 2 x multiply-adds of Conv2D/Dense layers (BN, activations, "
          f"pooling ignored); training = 3 x forward; %peak = training FLOP/s "
          f"over the nominal fp32 peak {PEAK_FP32_FLOPS / 1e9:.1f} GFLOP/s (2 cores x 2.6 GHz x "
          f"64 FLOP/cycle; boost clocks can exceed it)")
    print(COLUMNS, flush=True)

    results, row_walls = {}, []
    for name, config in rows:
        if config.get("optional"):
            estimate = 1.1 * max(row_walls)
            elapsed = time.perf_counter() - started
            if elapsed + estimate > args.budget:
                print(f"{name:<4} {LABELS[config['pipeline']]:<31} "
                      f"{training.KERAS_POLICIES[config['precision']]:<14} {config['batch']:>5}  "
                      f"skipped: "
                      f"~{estimate:.0f} s more would exceed --budget {args.budget:g} s", flush=True)
                continue
        print(f"... {name} {config['pipeline']} {config['precision']} batch {config['batch']}",
              file=sys.stderr, flush=True)
        row_start = time.perf_counter()
        result = measure(config["pipeline"], config["precision"], config["batch"], images,
                         one_hot, args)
        row_walls.append(time.perf_counter() - row_start)
        results[(config["pipeline"], config["precision"], config["batch"])] = result
        print(format_row(name, config, result), flush=True)

    def rate(pipeline_name, precision, batch):
        return results[(pipeline_name, precision, batch)]["images_per_second"]

    tutorial = rate("tutorial", "float32", TUTORIAL_BATCH)
    ratios = [(f"(a)/(b), both batch {TUTORIAL_BATCH} (pipeline + precision)",
               rate("project", auto, TUTORIAL_BATCH) / tutorial),
              (f"(a) batch {recipe_batch} / (b) batch {TUTORIAL_BATCH} "
               "(pipeline + precision + batch size)",
               rate("project", auto, recipe_batch) / tutorial),
              (f"(a) batch {recipe_batch} / (a) batch {TUTORIAL_BATCH} (batch size)",
               rate("project", auto, recipe_batch) / rate("project", auto, TUTORIAL_BATCH))]
    if ("project", other, recipe_batch) in results:
        ratios.append((f"bfloat16/float32, (a) batch {recipe_batch} (precision)",
                       rate("project", "bfloat16", recipe_batch)
                       / rate("project", "float32", recipe_batch)))
    if ("project", "float32", TUTORIAL_BATCH) in results:
        ratios.append((f"(a) float32 / (b), both batch {TUTORIAL_BATCH} (pipeline only)",
                       rate("project", "float32", TUTORIAL_BATCH) / tutorial))
    for text, value in ratios:
        print(f"# ratio {text}: {value:.2f}x")
    alone = {name: pipeline_alone(name, images, one_hot, TUTORIAL_BATCH, args.seed)
             for name in ("project", "tutorial")}
    print(f"# input pipeline alone, no model, batch {TUTORIAL_BATCH}: "
          f"{LABELS['project']} {alone['project']:,.0f} img/s; "
          f"{LABELS['tutorial']}, one thread {alone['tutorial']:,.0f} img/s")
    print(f"# total wall time {time.perf_counter() - started:.0f} s; "
          f"1-min load after: {load_average()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
