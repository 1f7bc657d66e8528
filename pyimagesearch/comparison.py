"""Compare finished runs from their `<plot stem>.json` files: per-run tables and mean ± std per
(regime, method, smoothing, epochs) group, on one view and with test-time augmentation (the
figure of the same runs is figures.plot_comparison)."""
import json
import os

import numpy as np

from pyimagesearch.errors import NotARunError
from pyimagesearch.recipes import FLAG_OVERRIDES, RECIPES

REQUIRED_KEYS = ("method", "args", "history", "epochs_completed", "test_metrics",
                 "reliability_bins", "wall_seconds")


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


# the network alone; averaged over the recipe's test-time views (what the scripts report)
VIEWS = {"one_view": "one view", "tta": "test-time augmentation"}
METRICS = ("accuracy", "mean_confidence", "nll", "ece", "brier", "temperature", "ece_scaled")


def view_metrics(run, view):
    """{metric: value} of `run` on one view or with test-time augmentation ('tta'); None where
    the run has no such numbers (a recipe without test-time views has no 'tta')."""
    has_views = run.get("recipe", {}).get("tta") != "none"  # runs before "recipe": views
    reported = {"test_metrics": run["test_metrics"], "temperature": run.get("temperature"),
                "test_metrics_temperature_scaled": run.get("test_metrics_temperature_scaled")}
    if view == "tta":
        block = reported if has_views else None
    else:  # without test-time views, what the run reports is one view's
        block = run.get("one_view") or (None if has_views else reported)
    if block is None:
        return None
    metrics = dict(block["test_metrics"])
    metrics["temperature"] = block.get("temperature")
    metrics["ece_scaled"] = (block.get("test_metrics_temperature_scaled") or {}).get("ece")
    return {metric: metrics.get(metric) for metric in METRICS}


def regime(run):
    """Recipe, training images and the recipe entries the command changed, e.g. 'overfit, 5000
    images' or 'overfit, 5000 images, weight_decay 0': what makes runs comparable."""
    name = run["args"].get("recipe", "?")
    images = run.get("data", {}).get("train_images")
    parts = [name] + ([] if images is None else [f"{images} images"])
    defaults, used = RECIPES.get(name, {}), run.get("recipe", {})
    parts += [f"{key} {used[key]:g}" for key in FLAG_OVERRIDES  # epochs: a column of its own
              if key != "epochs" and key in used and key in defaults
              and used[key] != defaults[key]]
    return ", ".join(parts)


def run_row(run, view):
    """One table row of a run on `view` (VIEWS), as a dict of plain values; None if the run has
    no numbers for that view."""
    metrics = view_metrics(run, view)
    if metrics is None:
        return None
    return {"run": os.path.splitext(os.path.basename(run["path"]))[0], "regime": regime(run),
            "method": run["method"], "smoothing": run["args"]["smoothing"],
            "seed": run["args"]["seed"], "epochs": run["epochs_completed"], **metrics,
            "wall_seconds": run["wall_seconds"]}


def aggregate(rows, metrics=METRICS):
    """Mean and sample std of each metric per (regime, method, smoothing, epochs) group."""
    groups = {}
    for row in rows:
        key = (row["regime"], row["method"], row["smoothing"], row["epochs"])
        groups.setdefault(key, []).append(row)
    summary = []
    for (regime_name, method, smoothing, epochs), members in sorted(groups.items()):
        entry = {"regime": regime_name, "method": method, "smoothing": smoothing,
                 "epochs": epochs, "runs": len(members)}
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


METRIC_COLUMNS = (("accuracy", "accuracy"), ("mean_confidence", "confidence"), ("nll", "NLL"),
                  ("ece", "ECE"), ("brier", "Brier"), ("temperature", "T"),
                  ("ece_scaled", "ECE after T"))
RUN_COLUMNS = ((("run", "run"), ("regime", "regime"), ("method", "method"),
                ("smoothing", "smoothing"), ("seed", "seed"), ("epochs", "epochs"))
               + METRIC_COLUMNS + (("wall_seconds", "wall s"),))
SUMMARY_COLUMNS = ((("regime", "regime"), ("method", "method"), ("smoothing", "smoothing"),
                    ("epochs", "epochs"), ("runs", "runs")) + METRIC_COLUMNS)


def report(runs):
    """The Markdown text compare.py prints: per view, a table of runs and one of mean ± std over
    seeds. Confidence is the mean top-class probability; T the temperature fitted on the
    validation images; ECE with 15 bins."""
    sections = []
    for view, title in VIEWS.items():
        rows = sorted((row for row in (run_row(run, view) for run in runs) if row is not None),
                      key=lambda row: (row["regime"], row["method"], row["smoothing"], row["seed"]))
        if rows:
            sections += [f"## Runs, {title}", markdown_table(rows, RUN_COLUMNS),
                         f"## Mean ± std over seeds, {title}",
                         markdown_table(aggregate(rows), SUMMARY_COLUMNS)]
    return "\n\n".join(sections) + "\n"
