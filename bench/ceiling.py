"""How close the training step comes to its convolutions alone: the convolution ceiling.

    python bench/ceiling.py | tee results/bench/ceiling_tensorflow_cpu.txt
    python bench/ceiling.py --precision float32 --inter-op 0     # TensorFlow's own threading

Two measurements, alternated in rounds in one process so that a machine whose speed drifts (a
shared CPU) slows both alike:

- the full step: the recipe's training model as a run builds it (model.build_models with the
  whitened, frozen stem where the recipe has one; in-model augmentation and normalisation),
  compiled with model.compile_model and trained by `fit` on random uint8 images, with lookahead
  where the recipe has it; images/s over the steps after the warm-up, as bench/throughput.py
  counts them;
- the convolutions alone: a copy of every Conv2D of that network (same configuration, dtype
  policy and trainable weights) applied to random inputs of the shape the network feeds it, in
  one compiled step: forward, the kernel gradient of every trainable kernel, the input gradient
  wherever the network needs one (every convolution with a trainable weight before it), and an
  SGD update with the recipe's momentum and weight decay. Its upstream gradients are random
  tensors handed to backpropagation, so nothing but convolutions (and their kernels' casts)
  runs.

The ratio full / convolutions alone is the share of the convolutions' own speed that the step
keeps: 1.0 would mean everything else is free. Rounds alternate the order (ABBA) and the summary
gives medians. A dense matmul of `--matmul-size` in the same precision is timed once a round as
a reference for the machine's peak. TensorFlow and JAX; under TensorFlow `--inter-op 1` runs ops
one at a time, as runs do (hardware.make_repeatable), and 0 keeps TensorFlow's default.
"""
import argparse
import datetime
import os
import statistics
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from pyimagesearch import tf_settings  # noqa: E402

tf_settings.set_defaults()  # as the scripts do; it must come before TensorFlow loads
import keras  # noqa: E402
from keras import layers, ops  # noqa: E402

from pyimagesearch import callbacks, hardware, model, whitening  # noqa: E402
from pyimagesearch.recipes import DEFAULT_RECIPE, RECIPES  # noqa: E402
# bench/ is on sys.path when run as a script
from throughput import StepTimer, set_inter_op  # noqa: E402

# the whitened stem's kernel only has to have a run's shape and scale here, not its values
WHITENING_IMAGES = 1000
LOOKAHEAD_EVERY = 5  # callbacks.Lookahead's default sync interval, in steps


def cpu_details():
    """'Intel(R) Xeon(R) Processor, family 6 model 167, amx_bf16 avx512_bf16' from /proc/cpuinfo
    (the bfloat16 flags decide --precision auto); the model name alone may not say which CPU."""
    fields, flags = {}, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        return hardware.cpu_model()
    bf16 = sorted(flags & {"amx_bf16", "avx512_bf16"}) or ["no bfloat16 flags"]
    return (f"{fields.get('model name', hardware.cpu_model())}, family {fields.get('cpu family')}"
            f" model {fields.get('model')}, {' '.join(bf16)}")


def random_data(count, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    one_hot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, count)]
    return images, one_hot


def build_training_model(recipe, batch_size, images, seed, jit_compile="auto"):
    """The recipe's training model, compiled, as training.run builds it (the stem whitened from
    the images if the recipe says so), and its number of steps per epoch."""
    mean, std = model.channel_stats(images[:WHITENING_IMAGES])
    stem_kernel = None
    if recipe["whiten_stem"]:
        stem_kernel = whitening.patch_whitening_kernel(
            model.normalize(images[:WHITENING_IMAGES], mean, std))
    training, _ = model.build_models(recipe, mean, std, stem_kernel, seed=seed)
    steps_per_epoch = len(images) // batch_size
    model.compile_model(training, recipe, keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=0.1), steps_per_epoch, jit_compile=jit_compile)
    return training, steps_per_epoch


def network_of(training):
    """The network inside the training model (its one nested keras.Model)."""
    nested = [layer for layer in training.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"expected one network inside {training.name}, found {len(nested)}")
    return nested[0]


def conv_plan(network):
    """[(Conv2D layer, input shape without batch, input dtype, needs input gradient)] in the
    network's order. A convolution needs its input's gradient when some layer before it has a
    trainable weight; in these chain-like networks (blocks, with residual adds inside a block)
    every earlier layer is upstream of it."""
    plan, upstream_trainable = [], False
    for layer in network.layers:
        if isinstance(layer, layers.Conv2D):
            plan.append((layer, tuple(layer.input.shape[1:]), layer.input.dtype,
                         upstream_trainable))
        upstream_trainable = upstream_trainable or bool(layer.trainable_weights)
    return plan


def conv_flops(plan):
    """Multiply-adds x 2 per image: (forward, kernel gradients, input gradients), each summed
    over the convolutions that compute it."""
    forward = kernel = inputs = 0
    for conv, shape, _, needs_input_gradient in plan:
        out_height, out_width, out_channels = conv.compute_output_shape((1, *shape))[1:]
        height, width = conv.kernel_size
        flops = 2 * out_height * out_width * height * width * shape[-1] * out_channels
        flops //= conv.groups
        forward += flops
        kernel += flops if conv.kernel.trainable else 0
        inputs += flops if needs_input_gradient else 0
    return forward, kernel, inputs


def describe_plan(plan):
    rows = []
    for conv, shape, _, needs_input_gradient in plan:
        out_shape = conv.compute_output_shape((1, *shape))[1:]
        rows.append(f"{conv.kernel_size[0]}x{conv.kernel_size[1]} {shape[0]}x{shape[1]}x{shape[2]}"
                    f"->{out_shape[0]}x{out_shape[1]}x{out_shape[2]}"
                    f"{'' if conv.kernel.trainable else ' frozen'}"
                    f"{' +dgrad' if needs_input_gradient else ''}")
    return "; ".join(rows)


class ConvolutionsAlone:
    """Copies of the plan's convolutions and one compiled training step over them (see the module
    docstring), with its random inputs and upstream gradients made once, on the device."""

    def __init__(self, plan, batch_size, recipe, seed):
        self.plan = plan
        self.convs = []
        for conv, shape, _, _ in plan:
            copy = layers.Conv2D.from_config(conv.get_config())
            copy.build((batch_size, *shape))
            copy.set_weights(conv.get_weights())
            copy.trainable = conv.trainable
            for mine, theirs in zip(copy.weights, conv.weights):
                mine.trainable = theirs.trainable  # the stem may train its bias only
            self.convs.append(copy)
        rng = np.random.default_rng(seed)
        self.inputs = [ops.convert_to_tensor(rng.standard_normal((batch_size, *shape)), dtype)
                       for _, shape, dtype, _ in plan]
        self.upstream = [
            ops.convert_to_tensor(rng.standard_normal(
                (batch_size, *copy.compute_output_shape((1, *shape))[1:])), copy.compute_dtype)
            for copy, (_, shape, _, _) in zip(self.convs, plan)]
        self.needs = [needs_input_gradient for *_, needs_input_gradient in plan]
        self.jax_state = None  # JAX: the step's weights and optimizer state, carried between calls
        self.variables = [variable for copy in self.convs for variable in copy.trainable_variables]
        self.optimizer = keras.optimizers.SGD(
            learning_rate=1e-6, momentum=recipe["momentum"], nesterov=recipe["nesterov"],
            weight_decay=recipe["weight_decay"])
        self.optimizer.build(self.variables)
        self.step = (self._tensorflow_step() if hardware.backend() == "tensorflow"
                     else self._jax_step())

    def _tensorflow_step(self):
        import tensorflow as tf

        @tf.function
        def step(inputs, upstream):
            watched = [tensor for tensor, need in zip(inputs, self.needs) if need]
            with tf.GradientTape() as tape:
                tape.watch(watched)
                outputs = [conv(tensor) for conv, tensor in zip(self.convs, inputs)]
            gradients = tape.gradient(outputs, self.variables + watched,
                                      output_gradients=upstream)
            kernel_gradients = gradients[:len(self.variables)]
            # the outputs and the input gradients feed nothing here (a convolution's gradients
            # do not read its output), so graph optimisation would drop them; control
            # dependencies keep them computed
            with tf.control_dependencies(outputs + gradients[len(self.variables):]):
                self.optimizer.apply(kernel_gradients, self.variables)

        return lambda: step(self.inputs, self.upstream)

    def _jax_step(self):
        import jax

        convs, needs = self.convs, self.needs
        trainable_counts = [len(conv.trainable_variables) for conv in convs]

        def forward(trainable, watched, others):
            outputs, watched, others, start = [], iter(watched), iter(others), 0
            for conv, count, need in zip(convs, trainable_counts, needs):
                tensor = next(watched) if need else next(others)
                output, _ = conv.stateless_call(
                    trainable[start:start + count],
                    [variable.value for variable in conv.non_trainable_variables], tensor)
                outputs.append(output)
                start += count
            return outputs

        def step(trainable, optimizer_state, watched, others, upstream):
            outputs, backward = jax.vjp(lambda t, w: forward(t, w, others), trainable, watched)
            # in the dtype of each output, which under JAX a frozen layer's may differ from the
            # policy's compute dtype
            kernel_gradients, input_gradients = backward(
                [gradient.astype(output.dtype) for gradient, output in zip(upstream, outputs)])
            trainable, optimizer_state = self.optimizer.stateless_apply(
                optimizer_state, kernel_gradients, trainable)
            # returned, so that XLA cannot drop the outputs and input gradients as unused
            return trainable, optimizer_state, (outputs, input_gradients)

        compiled = jax.jit(step, donate_argnums=(0, 1))
        watched = [tensor for tensor, need in zip(self.inputs, needs) if need]
        others = [tensor for tensor, need in zip(self.inputs, needs) if not need]
        state = self.jax_state = {
            "trainable": [variable.value for variable in self.variables],
            "optimizer": [variable.value for variable in self.optimizer.variables]}

        def run():
            state["trainable"], state["optimizer"], _ = compiled(
                state["trainable"], state["optimizer"], watched, others, self.upstream)

        return run

    def sync(self):
        """Wait for every step dispatched so far (JAX dispatches asynchronously)."""
        if hardware.backend() == "jax":
            import jax

            jax.block_until_ready(self.jax_state["trainable"])
        else:
            ops.convert_to_numpy(ops.cast(self.variables[-1][..., 0], "float32"))


def time_calls(call, sync, warmup, seconds):
    """(calls, seconds) of `call` after `warmup` untimed calls, timed until `seconds` have
    passed. Each call is waited for (JAX dispatches asynchronously), so that the clock stops at
    the first call past `seconds`, not after a queue of them."""
    for _ in range(warmup):
        call()
    sync()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call()
        sync()
        calls += 1
    return calls, time.perf_counter() - started


def measure_full(training, images, one_hot, recipe, batch_size, steps_per_epoch, warmup,
                 seconds, lookahead_functions):
    """(steps, seconds) of `fit` after `warmup` steps (see bench/throughput.py)."""
    fit_callbacks = []
    if recipe["lookahead"]:
        lookahead = callbacks.Lookahead(steps_per_epoch * recipe["epochs"], steps_per_epoch)
        if lookahead_functions:  # reuse the first round's compiled update: no retracing
            lookahead.update, lookahead.copy = lookahead_functions
        lookahead_functions[:] = [lookahead.update, lookahead.copy]
        fit_callbacks.append(lookahead)
    timer = StepTimer(warmup, seconds)
    fit_callbacks.append(timer)
    whole = steps_per_epoch * batch_size  # whole batches only, as a run trains
    training.fit(images[:whole], one_hot[:whole], batch_size=batch_size,
                 epochs=recipe["epochs"], shuffle=False, callbacks=fit_callbacks, verbose=0)
    if timer.elapsed is None:
        raise SystemExit("the fit ended before --seconds passed: use more --images")
    return timer.steps - timer.warmup_steps, timer.elapsed


def matmul_reference(size, dtype):
    """A compiled size x size matmul and its sync, in the policy's compute dtype."""
    rng = np.random.default_rng(0)
    left = ops.convert_to_tensor(rng.standard_normal((size, size)), dtype)
    right = ops.convert_to_tensor(rng.standard_normal((size, size)), dtype)
    compiled = hardware.compile_function(ops.matmul)
    result = {}

    def call():
        result["last"] = compiled(left, right)

    # numpy has no bfloat16: read back one element as float32
    return call, lambda: ops.convert_to_numpy(ops.cast(result["last"][0, 0], "float32"))


def use_precision(requested, seed):
    """Set Keras' dtype policy for `requested` ('auto' as runs resolve it) and the seed; returns
    the precision used."""
    precision = hardware.detect_precision() if requested == "auto" else requested
    keras.mixed_precision.set_global_policy(hardware.KERAS_POLICIES[precision])
    keras.utils.set_random_seed(seed)
    return precision


def machine_line():
    """A benchmark's first line: the time, the CPU (and any accelerator), the backend and the
    library versions."""
    return (f"# {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} | "
            f"CPU: {os.cpu_count()} cores, {cpu_details()} | "
            + (f"{hardware.device_summary()} | " if hardware.accelerators() else "")
            + f"backend {hardware.backend()} | "
            + ", ".join(f"{name} {version}"
                        for name, version in hardware.library_versions().items()))


def closing_line(started_at):
    """A benchmark's last line: the machine's load as it ends (a busy machine's numbers are
    suspect) and the seconds since `started_at` (time.perf_counter())."""
    return (f"# load average at end (1, 5, 15 min): "
            f"{' '.join(f'{value:.2f}' for value in os.getloadavg())}; "
            f"total {time.perf_counter() - started_at:.0f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=("auto", "bfloat16", "float32"), default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="of each measurement, alternated")
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed steps before the first round (tracing, compiling); "
                             "later rounds take 2")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE)
    parser.add_argument("--inter-op", type=int, choices=(0, 1), default=1,
                        help="TensorFlow: 1 = one op at a time (as runs), 0 = TensorFlow's default")
    parser.add_argument("--images", type=int, default=25600,
                        help="random uint8 images for fit (50 batches of 512: each round's "
                             "steps stay inside one epoch)")
    parser.add_argument("--matmul-size", type=int, default=4096, help="0: no matmul reference")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if hardware.backend() not in ("tensorflow", "jax"):
        parser.error(f"the {hardware.backend()} backend is not supported (TensorFlow or JAX)")
    inter_op = set_inter_op(args.inter_op)
    recipe = RECIPES[args.recipe]
    batch_size = args.batch_size or recipe["batch_size"]
    if args.images < 2 * batch_size:
        parser.error(f"--images must hold at least two batches of {batch_size}")
    precision = use_precision(args.precision, args.seed)
    started_at = time.perf_counter()
    print(machine_line())
    print(f"# arguments: precision {precision} (--precision {args.precision}), batch {batch_size}, "
          f"recipe '{args.recipe}', {args.seconds:g} s per measurement, {args.rounds} rounds, "
          f"warm-up {args.warmup} steps, inter-op threads {inter_op} (--inter-op {args.inter_op}),"
          f" {args.images:,} random images, seed {args.seed}, {tf_settings.describe()}")
    print(f"# load average at start (1, 5, 15 min): "
          f"{' '.join(f'{value:.2f}' for value in os.getloadavg())}", flush=True)

    images, one_hot = random_data(args.images, args.seed)
    training, steps_per_epoch = build_training_model(recipe, batch_size, images, args.seed)
    plan = conv_plan(network_of(training))
    convolutions = ConvolutionsAlone(plan, batch_size, recipe, args.seed)
    forward, kernel, inputs = conv_flops(plan)
    per_image = forward + kernel + inputs
    print(f"# convolutions: {describe_plan(plan)}")
    print(f"# per image: {forward / 1e6:.1f} MFLOP forward, {kernel / 1e6:.1f} kernel gradients, "
          f"{inputs / 1e6:.1f} input gradients, {per_image / 1e6:.1f} in all; full step: "
          f"lookahead {'on' if recipe['lookahead'] else 'off'}, stem "
          f"{'whitened, frozen' if recipe['whiten_stem'] else 'learned'}", flush=True)

    matmul = (matmul_reference(args.matmul_size, keras.mixed_precision.dtype_policy()
                               .compute_dtype) if args.matmul_size else None)
    print(f"{'round':>5} {'measurement':<20} {'steps':>6} {'time_s':>7} {'img/s':>8} "
          f"{'conv GFLOP/s':>13}")
    rates = {"full": [], "convs": []}
    lookahead_functions = []
    for round_index in range(args.rounds):
        warmup = args.warmup if round_index == 0 else 2
        if round_index == 0 and recipe["lookahead"]:
            # lookahead's first sync (which compiles its update) must come before the timer
            warmup = max(warmup, LOOKAHEAD_EVERY + 1)
        order = ("full", "convs") if round_index % 2 == 0 else ("convs", "full")
        for name in order:
            if name == "full":
                steps, elapsed = measure_full(training, images, one_hot, recipe, batch_size,
                                              steps_per_epoch, warmup, args.seconds,
                                              lookahead_functions)
                label = "full step"
            else:
                steps, elapsed = time_calls(convolutions.step, convolutions.sync, warmup,
                                            args.seconds)
                label = "convolutions alone"
            rate = steps * batch_size / elapsed
            rates[name].append(rate)
            print(f"{round_index + 1:>5} {label:<20} {steps:>6} {elapsed:>7.1f} {rate:>8,.0f} "
                  f"{rate * per_image / 1e9:>13,.0f}", flush=True)
        if matmul:
            calls, elapsed = time_calls(*matmul, warmup=2, seconds=min(args.seconds, 3.0))
            flops = 2 * args.matmul_size ** 3 * calls / elapsed
            print(f"{round_index + 1:>5} {'matmul ' + str(args.matmul_size) + '^2':<20} "
                  f"{calls:>6} {elapsed:>7.1f} {'':>8} {flops / 1e9:>13,.0f}", flush=True)
    full, alone = statistics.median(rates["full"]), statistics.median(rates["convs"])
    per_round = [f / c for f, c in zip(rates["full"], rates["convs"])]
    print(f"# medians: full step {full:,.0f} img/s, convolutions alone {alone:,.0f} img/s; "
          f"full / convolutions = {full / alone:.2f} (per round: "
          f"{', '.join(f'{ratio:.2f}' for ratio in per_round)})")
    print(closing_line(started_at))
    return 0


if __name__ == "__main__":
    sys.exit(main())
