"""Steady-state training throughput of recipe `fast`'s model on the current Keras backend.

    python bench/throughput.py                        # a few minutes on a 2-core CPU
    python bench/throughput.py --inter-op 0           # TensorFlow's own threading: what
                                                      # repeatable runs cost, against the above
    KERAS_BACKEND=jax python bench/throughput.py      # e.g. on a GPU

Each row builds the recipe's training model afresh (model.build_models: in-model shift-and-flip
augmentation and normalisation, the recipe's SGD, with or without lookahead), trains it with
`model.fit` on random uint8 images held in memory, and reports images per second over the steps
after `--warmup` (tracing, compilation). The timer stops after the last step's loss has been read
back, so queued device work is counted. Rows differ in precision, batch size and lookahead.
(bench/ceiling.py times the default recipe's step, whitened stem included.)
"""
import argparse
import datetime
import os
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from pyimagesearch import tf_settings  # noqa: E402

tf_settings.set_defaults()  # as the scripts do; it must come before TensorFlow loads
import keras  # noqa: E402

from pyimagesearch import callbacks, hardware, model  # noqa: E402
from pyimagesearch.recipes import RECIPES  # noqa: E402


class StepTimer(keras.callbacks.Callback):
    """Times the steps after `warmup` and stops training once `seconds` of them have passed.
    Keras calls back once per `steps_per_execution` steps."""

    def __init__(self, warmup, seconds, steps_per_execution=1):
        super().__init__()
        self.warmup, self.seconds, self.stride = warmup, seconds, steps_per_execution
        self.steps, self.warmup_steps, self.started, self.elapsed = 0, None, None, None

    def on_train_batch_end(self, batch, logs=None):
        self.steps += self.stride
        if self.started is None and self.steps >= self.warmup:
            self.warmup_steps = self.steps
            float(logs["loss"])  # wait for the warm-up steps to finish
            self.started = time.perf_counter()
        elif self.started is not None and time.perf_counter() - self.started > self.seconds:
            float(logs["loss"])  # wait for every queued step
            self.elapsed = time.perf_counter() - self.started
            self.model.stop_training = True


def set_inter_op(threads):
    """Before the backend's runtime starts: 1 = one op at a time, as runs do
    (hardware.make_repeatable), 0 = TensorFlow's default. Returns the setting in force, for the
    header."""
    if hardware.backend() != "tensorflow":
        return "n/a"
    if threads == 1 and not hardware.make_repeatable():
        raise SystemExit("TensorFlow started before --inter-op could be set")
    import tensorflow as tf

    return tf.config.threading.get_inter_op_parallelism_threads()


def measure(precision, batch_size, lookahead, images, one_hot, args):
    keras.mixed_precision.set_global_policy(hardware.KERAS_POLICIES[precision])
    keras.utils.set_random_seed(args.seed)
    recipe = RECIPES["fast"]
    mean, std = model.channel_stats(images[:1000])
    training, _ = model.build_models(recipe, mean, std, seed=args.seed)
    steps_per_epoch = len(images) // batch_size
    model.compile_model(training, recipe, keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=0.1), steps_per_epoch, args.steps_per_execution)
    fit_callbacks = []
    if lookahead:  # first, so that its first sync (compiling its update) precedes the timer
        fit_callbacks.append(callbacks.Lookahead(steps_per_epoch * recipe["epochs"],
                                                 steps_per_epoch))
    timer = StepTimer(args.warmup, args.seconds, args.steps_per_execution)
    fit_callbacks.append(timer)
    # whole batches only: a last, smaller one would be compiled afresh inside the timed steps
    whole = steps_per_epoch * batch_size
    training.fit(images[:whole], one_hot[:whole], batch_size=batch_size,
                 epochs=recipe["epochs"], shuffle=True, callbacks=fit_callbacks, verbose=0)
    if timer.elapsed is None:
        raise SystemExit("the run ended before --seconds passed: use more --images")
    timed_steps = timer.steps - timer.warmup_steps
    return timed_steps, timer.elapsed, timed_steps * batch_size / timer.elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per row")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per row")
    parser.add_argument("--images", type=int, default=50000, help="random uint8 images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--inter-op", type=int, choices=(0, 1), default=1,
                        help="TensorFlow: 1 = one op at a time, as runs do (their default, "
                             "--repeatable on), 0 = TensorFlow's default (--repeatable off)")
    args = parser.parse_args(argv)
    inter_op = set_inter_op(args.inter_op)
    rng = np.random.default_rng(args.seed)
    images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    one_hot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, args.images)]
    auto = hardware.detect_precision()
    batch = RECIPES["fast"]["batch_size"]
    rows = [(auto, batch, True), (auto, batch, False), (auto, 64, True)]
    if auto != "float32":
        rows.append(("float32", batch, True))
    versions = hardware.library_versions()
    print(f"# {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} | "
          f"{hardware.device_summary()} | backend {hardware.backend()} | "
          + ", ".join(f"{name} {version}" for name, version in versions.items()))
    print(f"# model: recipe 'fast' (model.build_models, learned stem), CE(label_smoothing=0.1), "
          f"random uint8 {args.images:,}x32x32x3; {args.warmup} warm-up steps, then "
          f"{args.seconds:.0f} s timed per row; steps_per_execution {args.steps_per_execution}; "
          f"inter-op threads {inter_op} (--inter-op {args.inter_op}); "
          f"{tf_settings.describe()}")
    print(f"{'precision':<10} {'batch':>5} {'lookahead':>9} {'steps':>6} {'time_s':>7} "
          f"{'img/s':>10}")
    started = time.perf_counter()
    throughput = {}
    for precision, batch_size, lookahead in rows:
        steps, elapsed, rate = measure(precision, batch_size, lookahead, images, one_hot, args)
        throughput[precision, batch_size, lookahead] = rate
        print(f"{precision:<10} {batch_size:>5} {'on' if lookahead else 'off':>9} {steps:>6} "
              f"{elapsed:>7.1f} {rate:>10,.0f}", flush=True)
    print(f"# lookahead on / off, {auto}, batch {batch}: "
          f"{throughput[auto, batch, True] / throughput[auto, batch, False]:.2f}x")
    print(f"# batch {batch} / batch 64, {auto}: "
          f"{throughput[auto, batch, True] / throughput[auto, 64, True]:.2f}x")
    if auto != "float32":
        print(f"# {auto} / float32, batch {batch}: "
              f"{throughput[auto, batch, True] / throughput['float32', batch, True]:.2f}x")
    print(f"# total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
