"""Compare finished runs from their `<plot stem>.json` files: a per-run table, mean ± std per
(method, smoothing, epochs) group, and a figure of validation curves and reliability diagrams."""
import json
import os

import numpy as np

REQUIRED_KEYS = ("method", "args", "history", "epochs_completed", "test_metrics",
                 "reliability_bins", "wall_seconds")


class NotARunError(Exception):
    """A file that is not a finished run's JSON."""


def load_run(path):
    try:
        with open(path, encoding="utf-8") as handle:
            run = json.load(handle)
    except OSError as error:
        raise NotARunError(f"{path}: cannot read ({error.strerror})") from None
    except ValueError as error:
        raise NotARunError(f"{path}: not JSON ({error})") from None
    if not isinstance(run, dict) or any(key not in run for key in REQUIRED_KEYS):
        raise NotARunError(f"{path}: not a finished run's JSON (needs keys "
                           f"{', '.join(REQUIRED_KEYS)}; a diverged run has no test metrics)")
    run["path"] = path
    return run


def run_row(run):
    """One table row of a run, as a dict of plain values."""
    scaled = run.get("test_metrics_temperature_scaled") or {}
    return {
        "run": os.path.splitext(os.path.basename(run["path"]))[0],
        "method": run["method"],
        "smoothing": run["args"]["smoothing"],
        "seed": run["args"]["seed"],
        "epochs": run["epochs_completed"],
        "accuracy": run["test_metrics"]["accuracy"],
        "nll": run["test_metrics"]["nll"],
        "ece": run["test_metrics"]["ece"],
        "ece_scaled": scaled.get("ece"),
        "wall_seconds": run["wall_seconds"],
    }


def aggregate(rows, metrics=("accuracy", "nll", "ece", "ece_scaled")):
    """Mean and sample std of each metric per (method, smoothing, epochs) group."""
    groups = {}
    for row in rows:
        groups.setdefault((row["method"], row["smoothing"], row["epochs"]), []).append(row)
    summary = []
    for (method, smoothing, epochs), members in sorted(groups.items()):
        entry = {"method": method, "smoothing": smoothing, "epochs": epochs,
                 "runs": len(members)}
        for metric in metrics:
            values = np.array([row[metric] for row in members if row[metric] is not None], float)
            entry[metric] = (float(values.mean()) if values.size else None,
                             float(values.std(ddof=1)) if values.size > 1 else None)
        summary.append(entry)
    return summary


def _cell(value, digits=4):
    if value is None:
        return "–"
    if isinstance(value, tuple):
        mean, std = value
        return "–" if mean is None else (f"{mean:.{digits}f}" if std is None
                                         else f"{mean:.{digits}f} ± {std:.{digits}f}")
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows, columns):
    """`columns`: (key, header) pairs."""
    lines = ["| " + " | ".join(header for _, header in columns) + " |",
             "| " + " | ".join("---" for _ in columns) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(
            f"{row[key]:.0f}" if key == "wall_seconds" else
            f"{row[key]:g}" if key == "smoothing" else _cell(row[key])
            for key, _ in columns) + " |")
    return "\n".join(lines)


RUN_COLUMNS = (("run", "run"), ("method", "method"), ("smoothing", "smoothing"), ("seed", "seed"),
               ("epochs", "epochs"), ("accuracy", "accuracy"), ("nll", "NLL"), ("ece", "ECE"),
               ("ece_scaled", "ECE after T-scaling"), ("wall_seconds", "wall s"))
SUMMARY_COLUMNS = (("method", "method"), ("smoothing", "smoothing"), ("epochs", "epochs"),
                   ("runs", "runs"), ("accuracy", "accuracy"), ("nll", "NLL"), ("ece", "ECE"),
                   ("ece_scaled", "ECE after T-scaling"))


def plot_comparison(path, runs):
    """Validation accuracy per epoch (left) and test reliability diagrams (right), one line a run."""
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    from pyimagesearch.outputs import plot_reliability, save_figure

    figure, (curve_axis, reliability_axis) = plt.subplots(1, 2, figsize=(12, 4.8))
    for run in runs:
        label = (f"{run['method']} α={run['args']['smoothing']} seed {run['args']['seed']}")
        accuracy = [value for value in run["history"].get("val_accuracy") or [] if value is not None]
        if accuracy:
            curve_axis.plot(np.arange(1, len(accuracy) + 1), accuracy, label=label)
        bins = run["reliability_bins"]
        plot_reliability(reliability_axis, (bins["count"], bins["mean_confidence"],
                                            bins["accuracy"]), label=label)
    curve_axis.set_xlabel("epoch")
    curve_axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    curve_axis.set_ylabel("validation accuracy (hard labels)")
    curve_axis.grid(alpha=0.3)
    curve_axis.legend(fontsize=7)
    reliability_axis.set_title("test reliability (15 bins)")
    reliability_axis.legend(fontsize=7)
    save_figure(figure, path)
