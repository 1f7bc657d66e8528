"""Seconds per training epoch of this checkout against an earlier commit, on the same machine in
one sitting: the check that a change made no one's training slower.

    python bench/epoch_time.py --baseline f96ae48 --dataset cifar-10-python.tar.gz
    python bench/epoch_time.py --baseline HEAD --new-args "--jit-compile on" \
        --old-args "--jit-compile off" --dataset cifar-10-python.tar.gz   # one flag against another

Both commits' `label_smoothing_loss.py` run the same command (default recipe; a training subset
so a pair takes minutes) in turn, new then old, `--pairs` times, so that drift in the machine's
speed hits both alike. Each run's JSON gives its per-epoch seconds (training plus the validation
pass, as a user waits for them); the first epoch of a run (tracing, compilation, warm-up) is left
out. Prints each run, the median steady epoch of each commit and old / new: above 1.0 the new
code is faster.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_once(checkout, dataset, out_json, extra):
    plot = os.path.splitext(out_json)[0] + ".png"
    command = [sys.executable, "label_smoothing_loss.py", "--dataset", dataset, "--plot", plot,
               *extra]
    completed = subprocess.run(command, cwd=checkout, capture_output=True, text=True,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if completed.returncode:
        sys.exit(f"{checkout}: {' '.join(command)} failed:\n{completed.stderr[-2000:]}")
    with open(out_json, encoding="utf-8") as handle:
        result = json.load(handle)
    return result["history"]["seconds"][1:], result["wall_seconds"], result["precision"]


def cpu_model():
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        return next((line.split(":", 1)[1].strip() for line in handle
                     if line.startswith("model name")), platform.machine())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git commit to compare against")
    parser.add_argument("--dataset", required=True, help="cifar-10-python.tar.gz")
    parser.add_argument("--pairs", type=int, default=3, help="new/old runs, alternating")
    parser.add_argument("--run-args", default="--train-size 10000 --test-size 1000 --epochs 3",
                        help="arguments for every run, beside --dataset and --plot")
    parser.add_argument("--new-args", default="", help="more arguments for this checkout's runs")
    parser.add_argument("--old-args", default="", help="more arguments for the baseline's runs")
    args = parser.parse_args(argv)
    extra = {"new": args.run_args.split() + args.new_args.split(),
             "old": args.run_args.split() + args.old_args.split()}
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as work:
        old_checkout = os.path.join(work, "baseline")
        subprocess.run(["git", "worktree", "add", "--detach", "-q", old_checkout, args.baseline],
                       cwd=REPO_ROOT, check=True)
        try:
            print(f"# {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}"
                  f" | CPU: {cpu_model()} x {os.cpu_count()} cores | new: {head} (this "
                  f"checkout) {args.new_args} | old: {args.baseline} {args.old_args} | runs: "
                  f"label_smoothing_loss.py {args.run_args}", flush=True)
            epochs = {"new": [], "old": []}
            for pair in range(args.pairs):
                for name, checkout in (("new", REPO_ROOT), ("old", old_checkout)):
                    seconds, wall, precision = run_once(
                        checkout, os.path.abspath(args.dataset),
                        os.path.join(work, f"{name}{pair}.json"), extra[name])
                    epochs[name].extend(seconds)
                    print(f"pair {pair + 1} {name}: steady epochs "
                          f"{', '.join(f'{value:.1f}' for value in seconds)} s | run "
                          f"{wall:.0f} s end to end | {precision}", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", old_checkout],
                           cwd=REPO_ROOT, check=False)
    new, old = statistics.median(epochs["new"]), statistics.median(epochs["old"])
    print(f"median steady epoch: new {new:.2f} s, old {old:.2f} s; old / new = {old / new:.3f} "
          f"({'new faster' if old > new else 'new slower or equal'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
