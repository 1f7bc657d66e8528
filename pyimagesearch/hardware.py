"""Backend, devices, precision and library versions: the one module that imports a backend
library (tensorflow, jax or torch) directly. Everything else is written in Keras 3 alone, and
`KERAS_BACKEND=tensorflow|jax|torch` picks the backend (TensorFlow by default)."""
import collections
import contextlib
import functools
import importlib.util
import os
import platform

import keras
import numpy as np

KERAS_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
SQRT_HALF = 0.7071067811865476  # 1/√2
INV_SQRT_2PI = 0.3989422804014327  # 1/√(2π), the normal density at 0


def backend():
    return keras.backend.backend()


def devices():
    """Keras' names of the devices a run can compute on, e.g. ['gpu:0'] or ['cpu:0']."""
    if backend() == "torch":  # keras.distribution has no torch implementation in Keras 3.15
        import torch

        return [f"gpu:{index}" for index in range(torch.cuda.device_count())] or ["cpu:0"]
    return list(keras.distribution.list_devices())


def gpu_names_and_capabilities():
    """[(name, (major, minor) compute capability or None)] of the backend's GPUs; [] on a CPU."""
    name = backend()
    if name == "jax":
        import jax

        return [(device.device_kind, _capability(getattr(device, "compute_capability", None)))
                for device in jax.devices() if device.platform == "gpu"]
    if name == "torch":
        import torch

        return [(torch.cuda.get_device_name(index), torch.cuda.get_device_capability(index))
                for index in range(torch.cuda.device_count())]
    if name == "tensorflow":
        import tensorflow as tf

        gpus = []
        for gpu in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(gpu)
            gpus.append((details.get("device_name", gpu.name),
                         details.get("compute_capability")))
        return gpus
    return []


def _capability(text):
    """'9.0' -> (9, 0); None stays None."""
    if text is None:
        return None
    major, _, minor = str(text).partition(".")
    return int(major), int(minor or 0)


def device_summary():
    """What the devices are, in words: '1 GPU: NVIDIA H200' or 'CPU: 2 cores, AMD EPYC'."""
    gpus = gpu_names_and_capabilities()
    if gpus:
        return f"{len(gpus)} GPU: {', '.join(sorted({gpu_name for gpu_name, _ in gpus}))}"
    return f"CPU: {os.cpu_count()} cores, {cpu_model()}"


def make_repeatable():
    """Make the same run give the same bits on this machine. Under TensorFlow, ops run one at a
    time (one inter-op thread), each still on every core (the intra-op threads): with several
    ops at once, some bfloat16 CPU kernels return different roundings from one call to the next
    on the same inputs (seen with and without oneDNN, on CPUs with AMX and with AVX512-BF16
    alone), so a run did not repeat itself. Must run before TensorFlow starts its runtime; JAX
    and PyTorch need nothing here. Returns False if it came too late to take effect."""
    if backend() != "tensorflow":
        return True
    import tensorflow as tf

    if tf.config.threading.get_inter_op_parallelism_threads() == 1:
        return True
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime has started: too late for this process
        return False
    return True


def start_runtime(repeatable=True):
    """Start what loads and prints at start-up, so that a caller can silence it in one place.
    Under TensorFlow: its runtime, made repeatable first unless `repeatable` is False (it must
    be, before the runtime starts), which is when CUDA is probed. Under JAX or PyTorch,
    TensorFlow is loaded where it is installed, because `keras.utils.set_random_seed` imports it
    under every backend. JAX's devices are left alone: a multi-process run must start its
    processes before JAX looks."""
    if backend() == "tensorflow":
        if repeatable:
            make_repeatable()
        devices()
    elif importlib.util.find_spec("tensorflow") is not None:
        import tensorflow  # noqa: F401


def fused_batch_norm_training(inputs, scale, offset, epsilon):
    """A training step's batch norm of 4-D channels-last `inputs` in TensorFlow's fused kernel
    (one pass each way, where Keras' layer is a dozen ops): (outputs, batch mean, biased batch
    variance), the statistics in float32. `scale` or `offset` None: ones or zeros. TensorFlow
    only."""
    import tensorflow as tf

    channels = inputs.shape[-1]
    outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        inputs, tf.ones(channels) if scale is None else scale,
        tf.zeros(channels) if offset is None else offset, epsilon=epsilon, is_training=True)
    # The kernel returns the variance with Bessel's correction, for TensorFlow's own moving
    # average; Keras averages the plain (biased) one
    count = tf.cast(tf.size(inputs) // channels, tf.float32)
    return outputs, mean, variance * ((count - 1) / count)


def fused_gelu_training(inputs):
    """Exact GELU, x·Φ(x), of `inputs` for a training step: the forward pass and its gradient
    each one XLA-compiled elementwise kernel (one pass over the tensor), where TensorFlow's own
    GELU and its autodiff gradient are many ops, each a pass. TensorFlow only."""
    return _tf_fused_gelu()(inputs)


@functools.cache
def _tf_fused_gelu():
    import tensorflow as tf

    def cdf(x):  # Φ(x) through erfc, as TensorFlow's own GELU: accurate for negative x
        return 0.5 * tf.math.erfc(x * -SQRT_HALF)

    @tf.function(jit_compile=True)
    def forward(x):
        return x * cdf(x)

    @tf.function(jit_compile=True)
    def backward(x, upstream):  # d/dx x·Φ(x) = Φ(x) + x·φ(x)
        return upstream * (cdf(x) + x * (INV_SQRT_2PI * tf.exp(-0.5 * tf.square(x))))

    @tf.custom_gradient
    def gelu(x):
        return forward(x), lambda upstream: backward(x, upstream)

    return gelu


def detect_precision():
    """'bfloat16' where the hardware runs it fast, else 'float32'. On a GPU: compute capability
    8.0 or newer (Ampere, Hopper). On a CPU: AVX512-BF16 or AMX, which TensorFlow's oneDNN uses
    (bench/throughput.py measures the gain)."""
    gpus = gpu_names_and_capabilities()
    if gpus:
        capability = gpus[0][1]
        return "bfloat16" if capability and tuple(capability) >= (8, 0) else "float32"
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


def library_versions():
    import matplotlib
    import sklearn

    versions = {"python": platform.python_version(), "keras": keras.__version__,
                "numpy": np.__version__, "scikit-learn": sklearn.__version__,
                "matplotlib": matplotlib.__version__}
    name = backend()
    if name == "tensorflow":
        import tensorflow

        versions["tensorflow"] = tensorflow.__version__
    elif name == "jax":
        import jax
        import jaxlib

        versions["jax"], versions["jaxlib"] = jax.__version__, jaxlib.__version__
    elif name == "torch":
        import torch

        versions["torch"] = torch.__version__
    return versions


def compile_function(function):
    """`function` compiled for the backend (jax.jit, tf.function), so that a loop of small
    tensor ops over many variables runs as one program on the device; as is under torch."""
    name = backend()
    if name == "jax":
        import jax

        return jax.jit(function)
    if name == "tensorflow":
        import tensorflow as tf

        return tf.function(function, reduce_retracing=True)
    return function


def to_numpy(value):
    """A numpy copy of the tensor `value`; of a JAX array spread over several processes, this
    process's copy (the arrays this is used on are replicated)."""
    if backend() == "jax" and not getattr(value, "is_fully_addressable", True):
        value = value.addressable_data(0)
    return keras.ops.convert_to_numpy(value)


def placed_like(array, like):
    """The numpy `array` as a tensor on the devices (and, under JAX, with the sharding) of the
    tensor `like`, so that compiled functions take the two together."""
    if backend() == "jax":
        import jax

        return jax.device_put(array, like.sharding)
    return keras.ops.convert_to_tensor(array, dtype=like.dtype)


def accelerators():
    """Keras' names of the local GPUs or TPUs ([] on a machine with CPUs only)."""
    return [name for name in devices() if not name.startswith("cpu")]


def data_parallel(device_names):
    """A context in which to build, compile and fit a model data-parallel over `device_names`
    (Keras' names, e.g. ['gpu:0', 'gpu:1']): each step splits the global batch between them and
    averages their gradients. JAX: Keras' `DataParallel` distribution (set globally, as Keras
    requires). TensorFlow: a `MirroredStrategy` scope. PyTorch: not supported by Keras 3.15's
    `fit`, so a `ValueError`."""
    check_data_parallel_support()
    if backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(
            [f"/{kind.upper()}:{index}" for kind, index in
             (device.split(":") for device in device_names)]).scope()
    # each process passes its own shard of the arrays (processes.shard), so Keras must not shard
    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=device_names, auto_shard_dataset=False))
    return contextlib.nullcontext()


def start_processes(coordinator, num_processes, process_id):
    """Join a job of `num_processes` processes, one or more a machine, that train as one
    (`keras.distribution.initialize`, built on `jax.distributed`); `coordinator` is process 0's
    HOST:PORT. Call it before anything else touches the backend. JAX only (ValueError elsewhere):
    Keras 3.15 has no multi-process training for TensorFlow or PyTorch."""
    if backend() != "jax":
        raise ValueError(f"several processes need KERAS_BACKEND=jax; the {backend()} backend has "
                         "no multi-process training in Keras " + keras.__version__
                         + (" (MultiWorkerMirroredStrategy is broken under Keras 3: "
                            "keras-team/keras#20585, tensorflow/tensorflow#72388)"
                            if backend() == "tensorflow" else ""))
    import jax

    # JAX's CPU client has no cross-process all-reduce unless told which library to use; GPUs use
    # NCCL and ignore this
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(coordinator, num_processes, process_id)


def check_same_in_every_process(value, message):
    """ValueError(`message`) unless the integer `value` is the same in every process of the job."""
    from jax.experimental import multihost_utils

    try:
        multihost_utils.assert_equal(np.int64(value), message)
    except AssertionError as error:
        raise ValueError(str(error)) from None


@contextlib.contextmanager
def no_distribution():
    """Keras' global distribution switched off inside the block: models built or run here stay
    on this process's devices."""
    saved = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(saved)


def check_data_parallel_support():
    """ValueError on a backend whose `fit` Keras cannot distribute (torch, in Keras 3.15)."""
    if backend() not in ("jax", "tensorflow"):
        raise ValueError(f"data parallelism is not available with the {backend()} backend in "
                         f"Keras {keras.__version__} (its fit has no distribution support); "
                         "use jax or tensorflow")


class CompileCounter:
    """Counts the backend programs JAX compiles (or reads from its persistent cache) and the
    seconds they take, through `jax.monitoring`; under other backends it counts nothing and
    `as_json()` is None. Create it before the first compile."""

    COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
    CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"

    def __init__(self):
        self.count, self.seconds, self.cache_hits = 0, 0.0, 0
        self.names = collections.Counter()  # programs compiled, by the function's name
        self.active = backend() == "jax"
        if self.active:
            from jax import monitoring

            monitoring.register_event_duration_secs_listener(self._on_duration)
            monitoring.register_event_listener(self._on_event)

    def _on_duration(self, event, duration, fun_name="?", **_):
        if event == self.COMPILE_EVENT:
            self.count += 1
            self.names[fun_name] += 1
            self.seconds += duration

    def _on_event(self, event, **_):
        if event == self.CACHE_HIT_EVENT:
            self.cache_hits += 1

    def as_json(self):
        if not self.active:
            return None
        return {"programs": self.count, "from_cache": self.cache_hits,
                "seconds": round(self.seconds, 3), "by_name": dict(self.names.most_common())}


def use_compile_cache(folder):
    """JAX's persistent compilation cache in `folder`, for every program, however fast it
    compiled (JAX's default skips those under a second, which on a GPU is most of a run's).
    Call it before the first compile; a no-op under other backends or with `folder` None."""
    if folder is None or backend() != "jax":
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
