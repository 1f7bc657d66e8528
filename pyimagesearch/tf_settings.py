"""Settings TensorFlow reads from the environment, set before it loads: every entry point (the
scripts' command line, the tests, the benchmarks) calls `set_defaults()` before importing Keras.
A value the user has exported wins. Neither changes the precision a run computes in; oneDNN's
kernels sum in another order than TensorFlow's own, so its float32 digits differ in the last
places from a run without it, and each repeats itself."""
import os

DEFAULTS = {
    # oneDNN's CPU kernels on every x86 CPU. TensorFlow turns them on by itself only where the
    # CPU has AVX-512 VNNI/BF16 or AMX; elsewhere (AVX2-only CPUs) its own convolution gradients
    # pack their operands into buffers that malloc maps afresh from the kernel on every call,
    # so much of a step goes to page faults rather than arithmetic (docs/benchmarks.md).
    "TF_ENABLE_ONEDNN_OPTS": "1",
    # tensors from TensorFlow's pool (its BFC allocator) rather than from malloc, for the same
    # reason: a step's activations are large enough to be mapped and unmapped on every step
    "TF_CPU_ALLOCATOR_USE_BFC": "true",
}


def set_defaults(environ=os.environ):
    """Put each of DEFAULTS into `environ` where it is not set; returns the names it set."""
    added = [name for name in DEFAULTS if name not in environ]
    for name in added:
        environ[name] = DEFAULTS[name]
    return added


def describe(environ=os.environ):
    """'TF_ENABLE_ONEDNN_OPTS=1, TF_CPU_ALLOCATOR_USE_BFC=true' as in force, for benchmark
    headers."""
    return ", ".join(f"{name}={environ.get(name, 'unset')}" for name in DEFAULTS)
