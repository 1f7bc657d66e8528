"""How many programs a short run compiles under JAX, and whether Keras dispatched the training
callbacks asynchronously: this checkout against an earlier commit, counted from outside the
code so that both commits are counted alike.

    python bench/compile_count.py --baseline 3c7c95b --dataset cifar-10-python.tar.gz

Each run is `label_smoothing_loss.py` (default recipe) with `--run-args`, under KERAS_BACKEND=jax,
inside a wrapper that listens to `jax.monitoring`'s compile events (each program JAX compiles or
reads back from its persistent cache, by function name) and records `_async_train` of every
CallbackList that `fit` builds. This checkout runs three times: the cache off, then twice with a
fresh cache folder (filling it, then reading it); the baseline once.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

from epoch_time import cpu_model  # bench/ is on the path when this runs as a script

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WRAPPER = r"""
import collections, json, sys
checkout, report, *argv = sys.argv[1:]
sys.path.insert(0, checkout)
sys.argv = ["label_smoothing_loss.py", *argv]
from jax import monitoring
counts = collections.Counter()
seconds = collections.Counter()
hits = []
def on_duration(event, duration, fun_name="?", **_):
    if event == "/jax/core/compile/backend_compile_duration":
        counts[fun_name] += 1
        seconds[fun_name] += duration
def on_event(event, **_):
    if event == "/jax/compilation_cache/cache_hits":
        hits.append(1)
monitoring.register_event_duration_secs_listener(on_duration)
monitoring.register_event_listener(on_event)
from keras.src.callbacks import callback_list
asynchronous = []
configure = callback_list.CallbackList._configure_async_dispatch
def recording(self, callbacks):
    configure(self, callbacks)
    asynchronous.append(self._async_train)
callback_list.CallbackList._configure_async_dispatch = recording
import label_smoothing_loss
code = label_smoothing_loss.main(argv)
json.dump({"exit": code, "programs": dict(counts), "seconds": dict(seconds),
           "cache_hits": len(hits), "async_train": asynchronous}, open(report, "w"))
"""


def count(checkout, dataset, work, name, run_args, cache=None):
    plot = os.path.join(work, f"{name}.png")
    report = os.path.join(work, f"{name}_compiles.json")
    argv = ["--dataset", dataset, "--plot", plot, *run_args]
    if cache is not None:
        argv += ["--compile-cache", cache]
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run([sys.executable, "-c", WRAPPER, checkout, report, *argv],
                               cwd=checkout, capture_output=True, text=True, env=env)
    if completed.returncode:
        sys.exit(f"{name}: failed:\n{completed.stderr[-3000:]}")
    with open(report, encoding="utf-8") as handle:
        counted = json.load(handle)
    with open(os.path.join(work, f"{name}.json"), encoding="utf-8") as handle:
        counted["wall_seconds"] = json.load(handle)["wall_seconds"]
    return counted


def describe(name, counted):
    programs = counted["programs"]
    training = sum(n for fun, n in programs.items() if "train_step" in fun
                   or "multi_train_steps" in fun)
    predicting = sum(n for fun, n in programs.items() if "predict_step" in fun)
    return (f"{name}: {sum(programs.values())} programs ({counted['cache_hits']} from the cache), "
            f"{sum(counted['seconds'].values()):.1f} s compiling | training-step programs "
            f"{training}, prediction programs {predicting} | callbacks dispatched "
            f"asynchronously in fit: {counted['async_train'][:1]} | run {counted['wall_seconds']:.0f} s"
            f" end to end")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git commit to compare against (optional)")
    parser.add_argument("--dataset", required=True, help="cifar-10-python.tar.gz")
    parser.add_argument("--run-args", default="--epochs 2 --train-size 2000 --test-size 1000",
                        help="arguments for every run, beside --dataset and --plot")
    args = parser.parse_args(argv)
    run_args = args.run_args.split()
    dataset = os.path.abspath(args.dataset)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    print(f"# {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} | "
          f"CPU: {cpu_model()} x {os.cpu_count()} cores | this checkout: {head} | baseline: "
          f"{args.baseline or 'none'} | KERAS_BACKEND=jax python label_smoothing_loss.py "
          f"{args.run_args}", flush=True)
    with tempfile.TemporaryDirectory() as work:
        cache = os.path.join(work, "cache")
        runs = [("this checkout, cache off", dict(cache="off")),
                ("this checkout, cache empty", dict(cache=cache)),
                ("this checkout, cache filled", dict(cache=cache))]
        for index, (name, options) in enumerate(runs):
            counted = count(REPO_ROOT, dataset, work, f"new{index}", run_args, **options)
            print(describe(name, counted), flush=True)
            if options["cache"] != "off":
                files = [os.path.join(cache, entry) for entry in os.listdir(cache)]
                print(f"  cache folder: {len(files)} files, "
                      f"{sum(map(os.path.getsize, files)) / 2 ** 20:.1f} MiB", flush=True)
            if index == 0:
                largest = sorted(counted["programs"].items(), key=lambda item: -item[1])[:8]
                print("  most compiled: " + ", ".join(f"{fun} x{n}" for fun, n in largest))
        if args.baseline:
            old_checkout = os.path.join(work, "baseline")
            subprocess.run(["git", "worktree", "add", "--detach", "-q", old_checkout,
                            args.baseline], cwd=REPO_ROOT, check=True)
            try:
                counted = count(old_checkout, dataset, work, "old", run_args)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", old_checkout],
                               cwd=REPO_ROOT, check=False)
            print(describe(f"baseline {args.baseline}", counted), flush=True)
            largest = sorted(counted["programs"].items(), key=lambda item: -item[1])[:8]
            print("  most compiled: " + ", ".join(f"{fun} x{n}" for fun, n in largest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
