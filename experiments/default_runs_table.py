"""The default runs' tables in docs/recipe.md, from the runs' JSON:

    python experiments/default_runs_table.py results/default/loss.json \\
        results/default/loss_seed43.json results/default/loss_seed44.json \\
        results/default/func.json results/default/loss_float32.json

Prints, in Markdown: one row per run (its command with the dataset's folder left out, epochs,
wall time, median epoch after the first, test accuracy on six views and on one, NLL, ECE, and
ECE after temperature scaling with T); the mean ± std (n - 1) of six-view and one-view accuracy
over the runs of each method and precision with more than one seed; whether the two methods'
runs of one seed and precision are bit-identical; and the first run's
validation accuracy against cumulative epoch time (time to accuracy).
"""
import argparse
import collections
import os
import shlex
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyimagesearch.comparison import load_run, view_metrics  # noqa: E402
from pyimagesearch.errors import NotARunError  # noqa: E402


def shown_command(run):
    """The run's command as a user would type it: the dataset named by its file alone."""
    words = shlex.split(run["command"])
    if "--dataset" in words:
        at = words.index("--dataset") + 1
        words[at] = os.path.basename(words[at].rstrip("/"))
    return " ".join(words)


def run_row(run, link):
    seconds = run["history"]["seconds"]
    views, one_view = view_metrics(run, "tta"), view_metrics(run, "one_view")
    cells = [f"[`{shown_command(run)}`]({link})", str(run["epochs_completed"]),
             f"{run['wall_seconds']:,.0f} s ({run['wall_seconds'] / 60:.1f} min)",
             f"{statistics.median(seconds[1:]):.0f} s", f"**{100 * views['accuracy']:.2f}%**",
             f"{100 * one_view['accuracy']:.2f}%", f"{views['nll']:.3f}", f"{views['ece']:.3f}",
             f"{views['ece_scaled']:.3f} ({views['temperature']:.2f})"]
    return "| " + " | ".join(cells) + " |"


def seed_summaries(runs):
    """Lines of mean ± std over seeds, for each (method, precision) run with several seeds."""
    groups = collections.defaultdict(dict)
    for run in runs:
        groups[(run["method"], run["precision"])][run["args"]["seed"]] = run
    lines = []
    for (method, precision), by_seed in groups.items():
        if len(by_seed) < 2:
            continue
        six = [100 * view_metrics(run, "tta")["accuracy"] for run in by_seed.values()]
        one = [100 * view_metrics(run, "one_view")["accuracy"] for run in by_seed.values()]
        lines.append(f"{method}, {precision}, seeds {', '.join(map(str, sorted(by_seed)))}: "
                     f"six views {statistics.mean(six):.2f} ± {statistics.stdev(six):.2f}%, "
                     f"one view {statistics.mean(one):.2f} ± {statistics.stdev(one):.2f}%")
    return lines


def method_comparisons(runs):
    """Lines saying, for each seed and precision run by both methods, whether the two are
    bit-identical: every value of `history` but the seconds, the test metrics on six views and
    on one, and the temperature."""
    by_setting = collections.defaultdict(dict)
    for run in runs:
        by_setting[(run["args"]["seed"], run["precision"])][run["method"]] = run
    lines = []
    for (seed, precision), by_method in by_setting.items():
        if len(by_method) < 2:
            continue
        compared = [{key: values for key, values in run["history"].items() if key != "seconds"}
                    | {"test": run["test_metrics"], "one view": run["one_view"],
                       "temperature": run["temperature"]} for run in by_method.values()]
        same = all(values == compared[0] for values in compared[1:])
        lines.append(f"{' and '.join(by_method)}, seed {seed}, {precision}: "
                     + ("bit-identical" if same else "NOT identical"))
    return lines


def time_to_accuracy(run):
    history = run["history"]
    epochs = len(history["seconds"])
    elapsed, total = [], 0.0
    for seconds in history["seconds"]:
        total += seconds
        elapsed.append(f"{total:,.0f}")
    header = ["epoch", *map(str, range(1, epochs + 1)), "test (6 views)"]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |",
            f"| `{run['method']}`: seconds | " + " | ".join(elapsed)
            + f" | {run['wall_seconds']:,.0f} end to end |",
            f"| `{run['method']}`: val accuracy | "
            + " | ".join(f"{100 * value:.1f}%" for value in history["val_accuracy"])
            + f" | {100 * run['test_metrics']['accuracy']:.2f}% |"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="finished runs' JSON files")
    parser.add_argument("--link-from", default="docs",
                        help="folder the links are written relative to (default: docs)")
    args = parser.parse_args(argv)
    try:
        runs = [load_run(path) for path in args.runs]
    except NotARunError as error:
        sys.exit(f"error: {error}")
    header = ["command", "epochs", "wall time", "steady epoch (median)",
              "test accuracy (6 views)", "one view", "NLL", "ECE", "ECE after T-scaling (T)"]
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(["---"] * len(header)) + " |")
    for path, run in zip(args.runs, runs):
        print(run_row(run, os.path.relpath(path, args.link_from)))
    print()
    for line in seed_summaries(runs) + method_comparisons(runs):
        print(line)
    print()
    print("\n".join(time_to_accuracy(runs[0])))


if __name__ == "__main__":
    main()
