"""Where a training step's time goes: TensorFlow's profiler over a few steps of the recipe's
training model, op time summed by layer kind and by op type.

    python bench/step_breakdown.py | tee results/bench/step_breakdown_tensorflow_cpu.txt
    python bench/step_breakdown.py --precision float32

The model is built, compiled and fed as bench/ceiling.py's full step (random uint8 images, the
whitened frozen stem where the recipe has one), trained `--warmup` steps untimed, then `--steps`
steps under `tf.profiler`; lookahead is left out, since its update runs between steps, outside
the step profiled here. Each op the step's executor ran is read from the profile (its name is
its place in the graph, e.g. `.../fast_resnet/batch_normalization_2/...:Mul`, with
`gradient_tape/` in front for the backward pass) and its duration added to its layer's kind
and to its op type. With `--inter-op 1` (as runs) ops run one at a time, so the op times add
up to the step's time, less what the executor spends between ops; the step's own time, from
the profile, is printed beside them. The convolutions-alone step of bench/ceiling.py is
profiled the same way, so that its convolution kernels can be compared with the same kernels
inside the full step.

`--variants` then profiles the same step with pieces of the network swapped, one model after
another (not interleaved), with the as-is model again at the end to show the machine's drift.
Each variant's network is a copy of the as-is one with its weights, so that their logits on one
batch can be compared (before either trains); the as-is network in float32 gives the scale of
bfloat16's own rounding:

    keras-batch-norm   Keras' BatchNormalization in place of batch_norm.FusedBatchNormalization
    keras-gelu         Keras' Activation("gelu") in place of gelu.FusedGELU
    gelu-bfloat16      Keras' GELU computed in the policy's dtype (bfloat16) instead of float32
    gelu-tanh          GELU's tanh approximation (keras.activations.gelu(approximate=True))
    xla                the step compiled with XLA (compile_model(jit_compile=True))

and '+' joins them: keras-batch-norm+gelu-bfloat16 is the network as it was before either
of the first two changes, keras-gelu the network before the fused GELU. TensorFlow only.
"""
import argparse
import collections
import contextlib
import glob
import os
import re
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from pyimagesearch import tf_settings  # noqa: E402

tf_settings.set_defaults()  # as the scripts do; it must come before TensorFlow loads
import keras  # noqa: E402
from keras import layers  # noqa: E402

import ceiling  # noqa: E402  (bench/ is on sys.path when run as a script)
import throughput  # noqa: E402
from pyimagesearch import hardware, model  # noqa: E402
from pyimagesearch.batch_norm import FusedBatchNormalization  # noqa: E402
from pyimagesearch.recipes import DEFAULT_RECIPE, RECIPES  # noqa: E402

# layer names (Keras' automatic names, without their _N suffixes) -> the kind reported
LAYER_KINDS = {
    "conv2d": "3x3 convolutions",
    "stem": "stem (2x2 conv, whitened)",
    "batch_normalization": "batch norm",
    "fused_batch_normalization": "batch norm",
    "activation": "GELU",
    "fused_gelu": "GELU",
    "max_pooling2d": "max pooling",
    "global_max_pooling2d": "global max pooling",
    "add": "residual add",
    "dense": "classifier (dense, rescaling)",
    "logits": "classifier (dense, rescaling)",
    "random_shift_and_flip": "augmentation (shift and flip)",
    "standardize": "standardisation",
}
VARIANT_PARTS = ("keras-batch-norm", "keras-gelu", "gelu-bfloat16", "gelu-tanh", "xla")
OP_NAME = re.compile(r"^(?P<path>[^:]+):(?P<type>[A-Za-z0-9_]+)$")
SUFFIX = re.compile(r"(_\d+)+$")


def profile(run, logdir):
    """Run `run()` under TensorFlow's profiler and return the host plane of its XSpace."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    tf.profiler.experimental.start(logdir)
    try:
        run()
    finally:
        tf.profiler.experimental.stop()
    (path,) = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
    space = xplane_pb2.XSpace()
    with open(path, "rb") as handle:
        space.ParseFromString(handle.read())
    return next(plane for plane in space.planes if plane.name == "/host:CPU")


def op_events(plane):
    """[(graph path, op type, seconds)] of every op the executors ran (the tf_Compute threads:
    tf.data's own threads and the profiler's markers left out). A call of an XLA-compiled
    function (gelu.FusedGELU's kernels) runs asynchronously: the profile names it only in the
    stats of its ExecutorState::ProcessAsync::Start event, and its op type is given as 'XLA'."""
    events = []
    for line in plane.lines:
        if not line.name.startswith("tf_Compute"):
            continue
        for event in line.events:
            name = plane.event_metadata[event.metadata_id].name
            match = OP_NAME.match(name)
            if match and "::" not in name:
                events.append((match["path"], match["type"], event.duration_ps / 1e12))
            elif name == "ExecutorState::ProcessAsync::Start":
                stats = {plane.stat_metadata[stat.metadata_id].name: stat_text(plane, stat)
                         for stat in event.stats}
                if stats.get("kernel_type") == "PartitionedCall":
                    events.append((stats["name"], "XLA", event.duration_ps / 1e12))
    return events


def stat_text(plane, stat):
    """A string stat's value, stored in the event or interned in the plane's stat metadata."""
    return stat.str_value or (plane.stat_metadata[stat.ref_value].name if stat.ref_value else "")


def step_seconds(plane):
    """[seconds] of each call of the training function (the longest-running function name on
    the Python thread that calls the compiled step)."""
    durations = collections.defaultdict(list)
    for line in plane.lines:
        for event in line.events:
            name = plane.event_metadata[event.metadata_id].name
            if "_on_iterator" in name or "__inference_step" in name:
                durations[name].append(event.duration_ps / 1e12)
    if not durations:
        return []
    return max(durations.values(), key=sum)


def kind_of(path, model_names, optimizer_name):
    """(kind, is backward) of the op at graph `path`."""
    parts = [part for part in path.split("/") if part != "StatefulPartitionedCall"]
    backward = bool(parts) and parts[0] == "gradient_tape"
    if backward:
        parts = parts[1:]
    if not parts:
        return "other", backward
    if SUFFIX.sub("", parts[0]) == optimizer_name:
        return "optimizer update", backward
    if parts[0] == "compile_loss":
        return "loss", backward
    inside = [part for part in parts if SUFFIX.sub("", part) not in model_names]
    if len(inside) < len(parts) and inside:
        layer = SUFFIX.sub("", inside[0])
        if layer in LAYER_KINDS:
            return LAYER_KINDS[layer], backward
        if layer == "Cast":
            return "casts between layers", backward
    if parts[0] == "IteratorGetNext":
        return "input (IteratorGetNext)", backward
    if len(parts) == 1 and parts[0].startswith("PartitionedCall"):
        # tf.custom_gradient's gradient (gelu.FusedGELU's backward kernel) is called outside
        # any layer's scope; the fused GELU is the network's only such function
        return "GELU", True
    if len(parts) == 1 and parts[0].startswith("AddN"):
        # gradients of a tensor used twice (a residual branch) summed, outside any layer's scope
        return "gradient sums (AddN)", True
    return "other (metrics, step counters)", backward


def summarise(events, model_names, optimizer_name):
    kinds = collections.defaultdict(lambda: [0.0, 0.0])  # kind -> [forward s, backward s]
    kind_types = collections.defaultdict(collections.Counter)
    types, calls = collections.Counter(), collections.Counter()
    for path, op_type, seconds in events:
        kind, backward = kind_of(path, model_names, optimizer_name)
        kinds[kind][backward] += seconds
        kind_types[kind][op_type] += seconds
        types[op_type] += seconds
        calls[op_type] += 1
    return kinds, kind_types, types, calls


def conv_seconds(types):
    return sum(seconds for op_type, seconds in types.items() if "Conv2D" in op_type)


def tanh_gelu(inputs):
    return keras.activations.gelu(inputs, approximate=True)


def swapped_network(network, variant):
    """A copy of `network` with `variant`'s layers swapped in ("float32": every layer in
    float32) and `network`'s weights."""
    parts = set(variant.split("+"))

    def swap(layer):
        config = layer.get_config()
        if "float32" in parts:
            config["dtype"] = "float32"
        is_gelu = (isinstance(layer, layers.Activation)
                   and getattr(layer.activation, "__name__", "") == "gelu")
        if is_gelu and "gelu-bfloat16" in parts:
            config["dtype"] = keras.mixed_precision.global_policy().name
        if is_gelu and "gelu-tanh" in parts:
            return layers.Activation(tanh_gelu, dtype=config["dtype"], name=layer.name)
        if is_gelu and parts & {"keras-gelu", "gelu-bfloat16"}:
            return layers.Activation.from_config(config)
        if isinstance(layer, FusedBatchNormalization) and "keras-batch-norm" in parts:
            return layers.BatchNormalization.from_config(config)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(network, clone_function=swap)
    copy.set_weights(network.get_weights())
    for mine, theirs in zip(copy.weights, network.weights):
        mine.trainable = theirs.trainable  # the frozen stem stays frozen
    return copy


@contextlib.contextmanager
def networks_built_from(template, variant):
    """model.build_models, inside the block, builds its network as `swapped_network(template,
    variant)`: the training model around it is then built as a run builds it."""
    original = model.build_network
    model.build_network = lambda recipe, stem_kernel=None: swapped_network(template, variant)
    try:
        yield
    finally:
        model.build_network = original


def training_logits(network, inputs, jit_compile=False):
    """float32 numpy logits of `network` in training mode (batch statistics), as a step sees
    them; compiled by XLA with `jit_compile`."""
    import tensorflow as tf

    forward = tf.function(lambda images: network(images, training=True),
                          jit_compile=jit_compile)
    return np.asarray(hardware.to_numpy(forward(inputs)), np.float64)


def profile_training(recipe, batch_size, images, one_hot, args, jit_compile="auto"):
    """(training model, op events, per-step seconds) of `args.steps` profiled steps after
    `args.warmup` untimed ones."""
    training, _ = ceiling.build_training_model(recipe, batch_size, images, args.seed,
                                               jit_compile)
    warm, profiled = batch_size * args.warmup, batch_size * (args.warmup + args.steps)
    training.fit(images[:warm], one_hot[:warm], batch_size=batch_size, epochs=1, verbose=0,
                 shuffle=False)
    with tempfile.TemporaryDirectory() as logdir:
        plane = profile(lambda: training.fit(images[warm:profiled], one_hot[warm:profiled],
                                             batch_size=batch_size, epochs=1, verbose=0,
                                             shuffle=False), logdir)
    steps = step_seconds(plane)
    if len(steps) != args.steps:
        raise SystemExit(f"found {len(steps)} training-step calls in the profile, expected "
                         f"{args.steps}")
    return training, op_events(plane), steps


def print_variants(rows, kinds_shown):
    print(f"\n{'variant':<32} {'step ms':>8} {'img/s':>6} {'vs as-is':>8} "
          + " ".join(f"{kind[:12]:>12}" for kind in kinds_shown)
          + f" {'logits diff':>11}")
    baseline = rows[0][1]
    for name, step_ms, rate, kind_ms, difference in rows:
        # under XLA the step is one compiled cluster: no per-layer ops to add up
        cells = [f"{kind_ms[kind]:>12.0f}" if kind_ms else f"{'n/a':>12}" for kind in kinds_shown]
        print(f"{name:<32} {step_ms:>8.0f} {rate:>6.0f} {baseline / step_ms:>7.2f}x "
              + " ".join(cells) + f" {difference:>11.2e}")


def kind_totals(events, model_names, optimizer_name, steps, kinds_shown):
    """{kind: ms a step} for `kinds_shown` and "everything else" (None without op events)."""
    if not events:
        return None
    kinds = summarise(events, model_names, optimizer_name)[0]
    totals = {kind: sum(kinds.get(kind, (0.0, 0.0))) * 1e3 / steps for kind in kinds_shown}
    totals["everything else"] = (sum(sum(value) for value in kinds.values()) * 1e3 / steps
                                 - sum(totals.values()))
    return totals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=("auto", "bfloat16", "float32"),
                        default="bfloat16")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE)
    parser.add_argument("--steps", type=int, default=4, help="profiled steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before profiling")
    parser.add_argument("--inter-op", type=int, choices=(0, 1), default=1,
                        help="1 = one op at a time (as runs), 0 = TensorFlow's default")
    parser.add_argument("--top", type=int, default=15, help="op types listed")
    parser.add_argument("--variants", default="",
                        help="comma-separated variants to profile after the as-is step, "
                             f"each one or more of {', '.join(VARIANT_PARTS)} joined by '+'")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if hardware.backend() != "tensorflow":
        parser.error("TensorFlow only (its profiler)")
    variants = [variant for variant in args.variants.split(",") if variant]
    for variant in variants:
        unknown = set(variant.split("+")) - set(VARIANT_PARTS)
        if unknown:
            parser.error(f"unknown variant part(s) {sorted(unknown)} in '{variant}'")
    inter_op = throughput.set_inter_op(args.inter_op)
    recipe = dict(RECIPES[args.recipe], lookahead=False)
    batch_size = args.batch_size or recipe["batch_size"]
    precision = ceiling.use_precision(args.precision, args.seed)
    started_at = time.perf_counter()
    print(ceiling.machine_line())
    print(f"# arguments: precision {precision}, batch {batch_size}, recipe '{args.recipe}' "
          f"(lookahead left out), {args.warmup} warm-up + {args.steps} profiled steps, "
          f"inter-op threads {inter_op} (--inter-op {args.inter_op}), variants "
          f"{', '.join(variants) or 'none'}, seed {args.seed}, {tf_settings.describe()}")
    print(f"# load average at start (1, 5, 15 min): "
          f"{' '.join(f'{value:.2f}' for value in os.getloadavg())}", flush=True)

    images, one_hot = ceiling.random_data(batch_size * (args.warmup + args.steps), args.seed)
    training, events, steps = profile_training(recipe, batch_size, images, one_hot, args)
    network = ceiling.network_of(training)
    model_names = {SUFFIX.sub("", name) for name in (training.name, network.name)}
    optimizer_name = SUFFIX.sub("", training.optimizer.name)
    kinds, kind_types, types, calls = summarise(events, model_names, optimizer_name)

    convolutions = ceiling.ConvolutionsAlone(ceiling.conv_plan(network), batch_size, recipe,
                                             args.seed)
    for _ in range(args.warmup):
        convolutions.step()
    convolutions.sync()
    with tempfile.TemporaryDirectory() as logdir:
        def run_alone():
            for _ in range(args.steps):
                convolutions.step()
            convolutions.sync()

        alone_plane = profile(run_alone, logdir)
    alone_types = summarise(op_events(alone_plane), set(), "")[2]

    per_step = 1e3 / args.steps  # seconds summed over the profiled steps -> ms per step
    total_ops = sum(types.values())
    step_ms = sum(steps) * per_step
    print(f"# full step: {step_ms:.0f} ms a step in the training function "
          f"({', '.join(f'{seconds * 1e3:.0f}' for seconds in steps)} ms), "
          f"{total_ops * per_step:.0f} ms of it in ops ({len(events) / args.steps:.0f} ops a "
          f"step); {batch_size * args.steps / sum(steps):,.0f} img/s while profiled")
    print(f"\n{'layer kind':<32} {'forward':>8} {'backward':>9} {'total ms':>9} {'share':>6}  "
          f"main op types (ms)")
    for kind, (forward, backward) in sorted(kinds.items(), key=lambda item: -sum(item[1])):
        main_types = ", ".join(f"{op_type} {seconds * per_step:.0f}"
                               for op_type, seconds in kind_types[kind].most_common(3))
        print(f"{kind:<32} {forward * per_step:>8.1f} {backward * per_step:>9.1f} "
              f"{(forward + backward) * per_step:>9.1f} "
              f"{(forward + backward) / total_ops:>6.1%}  {main_types}")
    print(f"{'all ops':<32} {'':>8} {'':>9} {total_ops * per_step:>9.1f} {1:>6.0%}")

    print(f"\n{'op type':<34} {'ops/step':>8} {'ms/step':>8} {'share':>6}")
    for op_type, seconds in types.most_common(args.top):
        print(f"{op_type:<34} {calls[op_type] / args.steps:>8.0f} {seconds * per_step:>8.1f} "
              f"{seconds / total_ops:>6.1%}")
    rest = total_ops - sum(seconds for _, seconds in types.most_common(args.top))
    print(f"{'(the other ' + str(max(len(types) - args.top, 0)) + ' op types)':<34} {'':>8} "
          f"{rest * per_step:>8.1f} {rest / total_ops:>6.1%}")

    conv_in_step, conv_alone = conv_seconds(types), conv_seconds(alone_types)
    print(f"\n# convolution kernels (op types with Conv2D), ms a step: in the full step "
          f"{conv_in_step * per_step:.1f} ({conv_in_step / total_ops:.0%} of its op time), in "
          f"the convolutions-alone step {conv_alone * per_step:.1f} "
          f"(all its ops {sum(alone_types.values()) * per_step:.1f})")
    for op_type in sorted({op_type for op_type in list(types) + list(alone_types)
                           if "Conv2D" in op_type}):
        print(f"#   {op_type:<34} full step {types[op_type] * per_step:>7.1f}  alone "
              f"{alone_types[op_type] * per_step:>7.1f}")

    if variants:
        kinds_shown = ("GELU", "batch norm", "3x3 convolutions")
        inputs = keras.ops.convert_to_tensor(np.random.default_rng(args.seed).standard_normal(
            (batch_size, *network.input_shape[1:])), "float32")
        reference = training_logits(network, inputs)
        scale = np.abs(reference).max()
        rows = [("as-is", step_ms, batch_size / (step_ms / 1e3),
                 kind_totals(events, model_names, optimizer_name, args.steps, kinds_shown), 0.0)]
        for variant in [*variants, "as-is (again)"]:
            parts = set(variant.split("+"))
            # before it trains, so that the two networks hold the same weights
            difference = np.abs(training_logits(swapped_network(network, variant), inputs,
                                                jit_compile="xla" in parts)
                                - reference).max() / scale
            with networks_built_from(network, variant):
                variant_training, variant_events, variant_steps = profile_training(
                    recipe, batch_size, images, one_hot, args,
                    jit_compile=True if "xla" in parts else "auto")
            variant_ms = sum(variant_steps) * per_step
            rows.append((variant, variant_ms, batch_size / (variant_ms / 1e3),
                         kind_totals(variant_events, model_names, optimizer_name, args.steps,
                                     kinds_shown), difference))
        float32_difference = np.abs(training_logits(swapped_network(network, "float32"), inputs)
                                    - reference).max() / scale
        print_variants(rows, (*kinds_shown, "everything else"))
        print(f"# logits diff: max |variant - as-is| / max |as-is| over one batch of "
              f"{batch_size} random inputs, training mode, the same weights; the as-is network "
              f"in float32 differs from it by {float32_difference:.2e}")
    print(ceiling.closing_line(started_at))
    return 0


if __name__ == "__main__":
    sys.exit(main())
