"""Compare finished runs from their `<plot stem>.json` files: per-run tables and mean ± std per
(regime, method, smoothing, epochs) group, on one view and with test-time augmentation (the
figure of the same runs is figures.plot_comparison). `load_run` reads a run's JSON and checks
every field the tables and the figures use (`check_run`, which figures.redraw shares), so that a
damaged file is one line naming the field, not a traceback from deep in numpy or matplotlib."""
import json
import math
import os

import numpy as np

from pyimagesearch.errors import NotARunError
from pyimagesearch.recipes import FLAG_OVERRIDES, RECIPES

REQUIRED_KEYS = ("method", "args", "history", "epochs_completed", "test_metrics",
                 "reliability_bins", "wall_seconds")
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")  # what the figures draw
TEST_METRICS = ("accuracy", "mean_confidence", "nll", "ece", "brier")
BINS = ("reliability_bins", "reliability_bins_temperature_scaled")


def _number(value):
    """A JSON number a float can hold: not true or false, not an integer of hundreds of
    digits (which the tables' float formats and numpy cannot take)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


# The lists' kinds, by what each item must be
ITEMS = {
    "a list of numbers and nulls": lambda item: item is None or _number(item),
    # numpy keeps an integer past int64 as a Python object, which matplotlib cannot draw
    "a non-empty list of image counts": lambda item: isinstance(item, int)
    and not isinstance(item, bool) and 0 <= item < 2 ** 63,
}
# What each field read below must hold, by the name its messages give it.
KINDS = {
    "an object": lambda value: isinstance(value, dict),
    "an object or null": lambda value: value is None or isinstance(value, dict),
    "a string": lambda value: isinstance(value, str),
    "a number": _number,
    "a number or null": lambda value: value is None or _number(value),
    "a finite number": lambda value: _number(value) and math.isfinite(value),
    "an integer": lambda value: isinstance(value, int) and _number(value),
    "a list of numbers and nulls": lambda value: isinstance(value, list) and all(
        map(ITEMS["a list of numbers and nulls"], value)),
    "a non-empty list of image counts": lambda value: isinstance(value, list) and value and all(
        map(ITEMS["a non-empty list of image counts"], value)),
}

# Every field of a run's JSON that the tables or the figures read: (field, kind, whether a run
# must have it). A field inside an object that is absent or null is not looked for.
RUN_FIELDS = (
    ("method", "a string", True),
    ("method_summary", "a string", False),
    ("args", "an object", True),
    ("args.smoothing", "a finite number", True),
    ("args.seed", "an integer", True),
    ("args.recipe", "a string", True),
    ("recipe", "an object", False),
    ("recipe.tta", "a string", False),
    *((f"recipe.{key}", "a number", False) for key in FLAG_OVERRIDES),
    ("data", "an object", False),
    ("history", "an object", True),
    *((f"history.{key}", "a list of numbers and nulls", False) for key in HISTORY_KEYS),
)
FINISHED_FIELDS = (
    ("epochs_completed", "an integer", True),
    ("wall_seconds", "a number", True),
    ("one_view", "an object or null", False),
    *(field for block in ("", "one_view.") for field in (
        (f"{block}test_metrics", "an object", True),
        *((f"{block}test_metrics.{metric}", "a number or null", not block and metric == "ece")
          for metric in TEST_METRICS),
        (f"{block}temperature", "a number or null", False),
        (f"{block}test_metrics_temperature_scaled", "an object or null", False),
        (f"{block}test_metrics_temperature_scaled.ece", "a number or null", False))),
    ("reliability_bins", "an object", True),
    ("reliability_bins_temperature_scaled", "an object or null", False),
    *(field for bins in BINS for field in (
        (f"{bins}.count", "a non-empty list of image counts", True),
        (f"{bins}.mean_confidence", "a list of numbers and nulls", True),
        (f"{bins}.accuracy", "a list of numbers and nulls", True))),
)


def _shown(value, kind=None):
    """A value as a message shows it, short and in JSON's words; for a list of `kind`, its first
    wrong item."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= 24 else f"an integer of {len(text)} digits"
    if isinstance(value, str):
        return f"the string {value!r:.30}"
    if not isinstance(value, list):
        return "an object"
    wrong = [item for item in value if kind in ITEMS and not ITEMS[kind](item)][:1]
    return (f"{_shown(wrong[0])} among its {len(value)} items" if wrong else
            f"a list of {len(value)}" if value else "an empty list")


def read_json(path):
    """What the JSON file at `path` holds; NotARunError if it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as error:
        raise NotARunError(f"{path}: cannot read ({error.strerror})") from None
    except ValueError as error:
        raise NotARunError(f"{path}: not JSON ({error})") from None
    except RecursionError:  # the parser recurses once per nested list or object
        raise NotARunError(f"{path}: not JSON (nested deeper than the parser goes)") from None


def check_run(run, where, finished=True):
    """Refuse, naming the field, a run's JSON that the tables or the figures could not use (a
    NotARunError): every field they read is checked here, once, so that nothing past this meets
    a string where a number belongs. `finished` False: a diverged run's, without test metrics."""
    if not isinstance(run, dict) or finished and any(key not in run for key in REQUIRED_KEYS):
        raise NotARunError(f"{where}: not a finished run's JSON (needs keys "
                           f"{', '.join(REQUIRED_KEYS)}; a diverged run has no test metrics)"
                           if finished else f"{where}: not a run's JSON (an object needed)")
    for field, kind, required in RUN_FIELDS + (FINISHED_FIELDS if finished else ()):
        *parents, key = field.split(".")
        parent = run
        for name in parents:  # checked already, as fields come after the object holding them
            parent = parent.get(name) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or key not in parent and not required:
            continue
        if key not in parent:
            raise NotARunError(f"{where}: '{field}' is missing")
        if not KINDS[kind](parent[key]):
            raise NotARunError(f"{where}: '{field}' must be {kind}, found "
                               f"{_shown(parent[key], kind)}")
    if finished:  # the figures draw both diagrams' bins on the edges of the first
        size = len(run["reliability_bins"]["count"])
        for bins, key in ((bins, key) for bins in BINS if run.get(bins) is not None
                          for key in ("count", "mean_confidence", "accuracy")):
            if len(run[bins][key]) != size:
                raise NotARunError(f"{where}: '{bins}.{key}' must hold one value per bin "
                                   f"({size}), found {len(run[bins][key])}")


def load_run(path):
    """A finished run's result dict from its JSON, with its `path`; NotARunError if it is not
    one."""
    run = read_json(path)
    check_run(run, path)
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
