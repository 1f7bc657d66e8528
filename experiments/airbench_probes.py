"""Probes of airbench94's recipe differences (issue "the same accuracy in 10 epochs instead of
14"): the `fast` recipe, `fast` with each change alone, all changes together, and all changes
with fewer epochs, each trained with Method 2 (smoothing 0.1) for several seeds, one run after
another in this process. Prints and saves `<out>/probes.md`: per candidate the mean and standard
deviation over seeds of the test accuracy with the recipe's six test-time views and with one
view; each run's JSON stays in `<out>/runs/` (its model, plots and report are deleted).

    python experiments/airbench_probes.py DATASET OUT [--seeds 0 1] [--epoch-scale 0.5]
        [--only NAME ...] [--stop-after-minutes M] [-- extra flags for every run]

`--epoch-scale` shrinks every candidate's epochs (14 -> 7 at 0.5), and the stem-bias epochs
with them, so that short probes keep the recipes' proportions. Flags after `--` go to every run
(e.g. `--train-size 1200 --val-size 200 --test-size 500`). `--stop-after-minutes` starts no new
candidate after that much wall time; the table then has the candidates that finished.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import label_smoothing_loss  # noqa: E402
from pyimagesearch import recipes  # noqa: E402

# airbench94's changes (legacy/airbench94.py), each one a set of recipe entries; "stem_bias" is
# its whitening-bias epochs (3 of its 10).
CHANGES = {
    "flip": dict(flip="alternate"),
    "stem_bias": dict(stem_bias_epochs=3),
    "bn_momentum": dict(bn_momentum=0.6),
    "airbench_block": dict(block="airbench", dirac_init=True),
    "dirac": dict(dirac_init=True),
}
ALL_CHANGES = {key: value for name in ("flip", "stem_bias", "bn_momentum", "airbench_block")
               for key, value in CHANGES[name].items()}
FAST_EPOCHS = recipes.RECIPES["fast"]["epochs"]
# (name, changes from `fast`, epochs before scaling), in the order they run: the comparison the
# issue asks for first (all changes in fewer epochs against `fast`), then each change alone.
CANDIDATES = [
    ("fast", {}, FAST_EPOCHS),
    ("all_10_epochs", ALL_CHANGES, 10),
    ("all_8_epochs", ALL_CHANGES, 8),
    ("all", ALL_CHANGES, FAST_EPOCHS),
    *[(f"fast+{name}", changes, FAST_EPOCHS) for name, changes in CHANGES.items()],
]


def scaled(changes, epochs, scale):
    """(recipe changes, epochs) with every epoch count multiplied by `scale` (at least 1)."""
    changes = dict(changes)
    if changes.get("stem_bias_epochs"):
        changes["stem_bias_epochs"] = max(1, round(changes["stem_bias_epochs"] * scale))
    return changes, max(1, round(epochs * scale))


def mean_std(values):
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.2%} ± {spread:.2%}"


def header(args, extra):
    cpu = platform.processor() or "unknown"
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines
                   if line.startswith("Model name"))
        cpu += f", {os.cpu_count()} cores"
    except (OSError, StopIteration):
        pass
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=root).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, cwd=root).stdout.strip()
    return [
        "# airbench94 recipe probes",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='minutes')}",
        f"- code: commit {commit}{' (with uncommitted changes)' if dirty else ''}; each "
        "epoch's last partial batch is still trained at this commit",
        f"- CPU: {cpu}, float32, shared with other work (wall times vary with its load)",
        f"- command: `python experiments/airbench_probes.py "
        f"{shlex.join(sys.argv[1:])}`",
        f"- every run: Method 2 (`label_smoothing_loss.py --smoothing 0.1`), "
        f"flags `{shlex.join(extra) or '(none)'}`, seeds {args.seeds}",
        f"- epochs: each candidate's recipe epochs times {args.epoch_scale} (the `fast` "
        f"recipe's {FAST_EPOCHS} -> {scaled({}, FAST_EPOCHS, args.epoch_scale)[1]}); stem-bias "
        "epochs scaled alike",
        "- these are short probes on a small subset of the data, not the full recipe: "
        "their accuracies are far below a full run's and differences of a few points are "
        "within the seed-to-seed spread",
        "- data: the shared CIFAR-10 JPEG re-encoding, which costs accuracy against the "
        "official files",
        "",
    ]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    extra = []
    if "--" in argv:
        argv, extra = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("out")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epoch-scale", type=float, default=1.0)
    parser.add_argument("--only", nargs="+", help="candidate names to run (default: all)")
    parser.add_argument("--stop-after-minutes", type=float, default=None)
    args = parser.parse_args(argv)
    import keras

    runs = os.path.join(args.out, "runs")
    os.makedirs(runs, exist_ok=True)
    started, seconds_per_epoch = time.perf_counter(), []
    lines = header(args, extra) + [
        "| candidate | changed from `fast` | epochs | seeds | test accuracy, six views | "
        "one view | wall s per run |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, changes, epochs in CANDIDATES:
        if args.only and name not in args.only:
            continue
        changes, epochs = scaled(changes, epochs, args.epoch_scale)
        # this candidate's expected wall time, from the seconds per epoch of the runs so far
        expected = (statistics.mean(seconds_per_epoch) * epochs * len(args.seeds)
                    if seconds_per_epoch else 0)
        if (args.stop_after_minutes is not None and time.perf_counter() - started + expected
                > 60 * args.stop_after_minutes):
            lines.append(f"| {name} | not run: out of time | {epochs} | | | | |")
            continue
        recipe_name = f"probe_{name}"
        recipes.RECIPES[recipe_name] = dict(recipes.RECIPES["fast"], **changes)
        six_views, one_view, walls, seeds = [], [], [], []
        for seed in args.seeds:
            keras.backend.clear_session()
            stem = os.path.join(runs, f"{name}_seed{seed}")
            status = label_smoothing_loss.main(
                ["--dataset", args.dataset, "--recipe", recipe_name, "--epochs", str(epochs),
                 "--smoothing", "0.1", "--seed", str(seed), "--plot", stem + ".png", *extra])
            for suffix in (".keras", ".png", "_calibration.png", "_report.txt"):
                if os.path.exists(stem + suffix):
                    os.remove(stem + suffix)
            if status:
                print(f"{name} seed {seed}: exit status {status}", flush=True)
                continue
            with open(stem + ".json", encoding="utf-8") as handle:
                result = json.load(handle)
            six_views.append(result["test_metrics"]["accuracy"])
            one_view.append(result["one_view"]["test_metrics"]["accuracy"])
            walls.append(result["wall_seconds"])
            seconds_per_epoch.append(result["wall_seconds"] / epochs)
            seeds.append(seed)
        lines.append(f"| {name} | {json.dumps(changes) if changes else '(none)'} | {epochs} | "
                     f"{', '.join(map(str, seeds)) or 'none finished'} | {mean_std(six_views)} "
                     f"| {mean_std(one_view)} | "
                     f"{statistics.mean(walls):.0f} |" if walls else f"| {name} | failed | | | | | |")
        write_table(args.out, lines)  # after every candidate: an interrupted set keeps it
    write_table(args.out, lines + ["", f"Probe set wall time: "
                                       f"{(time.perf_counter() - started) / 60:.0f} min."])
    return 0


def write_table(out, lines):
    table = "\n".join(lines) + "\n"
    print(table, flush=True)
    with open(os.path.join(out, "probes.md"), "w", encoding="utf-8") as handle:
        handle.write(table)


if __name__ == "__main__":
    sys.exit(main())
