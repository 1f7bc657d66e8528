"""The distillation study's table and figure, from the JSON of its runs
(experiments/distillation_study.sh):

    python experiments/distillation_table.py runs/study/distillation/*.json \\
        --plot runs/study/distillation/distillation.png

Prints a Markdown table of mean ± std over seeds, one row per kind of run: the teachers and the
students trained alone by recipe and α, the distilled students by student recipe, α, teacher α,
T and λ, with the accuracy of the teachers they learnt from beside their own accuracy and ECE
(15 bins). Saves it as `<plot stem>.md`, and draws each distilled student's accuracy against
its teacher's, coloured by the teacher's α, one marker per T, with the students trained alone as
horizontal bands (mean ± std). Metrics are on one view (the network alone) unless `--view tta`.
A distilled run's teacher is found by the JSON beside the teacher's `.keras`, or, when the
runs were moved, by that file's name beside the student's JSON.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
import numpy as np  # noqa: E402

from pyimagesearch import comparison, figures  # noqa: E402
from pyimagesearch.errors import NotARunError  # noqa: E402
from pyimagesearch.outputs import write_text  # noqa: E402

TEMPERATURE_MARKERS = ("o", "^", "s", "D", "v", "P")


def find_teacher(run):
    """The finished teacher run of distilled `run`, or None if its JSON is nowhere to be read."""
    stem = os.path.splitext(run["args"]["teacher"])[0]
    for path in (stem + ".json",
                 os.path.join(os.path.dirname(run["path"]), os.path.basename(stem) + ".json")):
        try:
            return comparison.load_run(path)
        except NotARunError:
            continue
    return None


def describe(run, view):
    """One run as the table sees it: its group key, its metrics and its teacher's accuracy."""
    args = run["args"]
    metrics = comparison.view_metrics(run, view) or {}
    distilled = isinstance(args.get("teacher"), str) and bool(args["teacher"])
    teacher = find_teacher(run) if distilled else None
    teacher_metrics = (comparison.view_metrics(teacher, view) or {}) if teacher else {}
    record = run.get("teacher") if isinstance(run.get("teacher"), dict) else {}
    teacher_smoothing = teacher["args"]["smoothing"] if teacher else record.get("smoothing")
    key = (args.get("recipe", "?"), args["smoothing"],
           teacher_smoothing if distilled else None,
           args.get("distill_temperature") if distilled else None,
           args.get("distill_weight") if distilled else None)
    return {"key": key, "distilled": distilled, "seed": args["seed"],
            "accuracy": metrics.get("accuracy"), "ece": metrics.get("ece"),
            "teacher_accuracy": teacher_metrics.get("accuracy"),
            "teacher_path": args.get("teacher")}


def mean_std(values):
    values = np.array([value for value in values if value is not None], float)
    if not values.size:
        return None, None
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else None


def _order(group):
    """Runs without a teacher first, then by recipe, α, teacher α, T and λ."""
    (recipe, smoothing, *distillation), members = group
    return (members[0]["distilled"], recipe, smoothing,
            *(-1 if value is None else value for value in distillation))


def summarise(rows):
    """Per group: runs, and mean ± std of accuracy, ECE and the teachers' accuracy (each
    distinct teacher counted once)."""
    groups = {}
    for row in rows:
        groups.setdefault(row["key"], []).append(row)
    summary = []
    for key, members in sorted(groups.items(), key=_order):
        teachers = {row["teacher_path"]: row["teacher_accuracy"] for row in members}
        summary.append({"key": key, "runs": len(members),
                        "accuracy": mean_std(row["accuracy"] for row in members),
                        "ece": mean_std(row["ece"] for row in members),
                        "teacher_accuracy": mean_std(teachers.values())
                        if members[0]["distilled"] else (None, None)})
    return summary


def _cell(pair, digits=4):
    mean, std = pair
    if mean is None:
        return "–"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _value(value):
    if value is None:
        return "–"
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def markdown(summary, view):
    lines = [f"Test set, {comparison.VIEWS[view]}; mean ± std over seeds (ECE: 15 bins).", "",
             "| recipe | α | teacher α | T | λ | runs | teacher accuracy | accuracy | ECE |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for entry in summary:
        recipe, smoothing, teacher_smoothing, temperature, weight = entry["key"]
        lines.append("| " + " | ".join([
            recipe, _value(smoothing), _value(teacher_smoothing), _value(temperature),
            _value(weight), str(entry["runs"]), _cell(entry["teacher_accuracy"]),
            _cell(entry["accuracy"]), _cell(entry["ece"])]) + " |")
    return "\n".join(lines) + "\n"


def plot(path, rows, summary, view):
    """Each distilled student's accuracy against its teacher's, coloured by teacher α, marker
    by T; the students trained alone as bands of mean ± std."""
    distilled = [row for row in rows if row["distilled"] and row["accuracy"] is not None
                 and row["teacher_accuracy"] is not None]
    alphas = sorted({row["key"][2] for row in distilled if row["key"][2] is not None})
    colors = figures.smoothing_colors([{"args": {"smoothing": alpha}} for alpha in alphas])
    temperatures = sorted({row["key"][3] for row in distilled})
    markers = {value: TEMPERATURE_MARKERS[index % len(TEMPERATURE_MARKERS)]
               for index, value in enumerate(temperatures)}
    figure, axis = plt.subplots(figsize=(7.5, 5.6))
    student_recipes = {row["key"][0] for row in distilled}
    band_styles = iter(("--", ":", "-.", (0, (5, 1))))
    for entry in summary:  # the students alone: same recipe as the distilled ones, no teacher
        recipe, smoothing, teacher_smoothing = entry["key"][:3]
        mean, std = entry["accuracy"]
        if teacher_smoothing is not None or entry["key"][3] is not None or mean is None \
                or recipe not in student_recipes:
            continue
        style = next(band_styles, "--")
        axis.axhline(mean, color="0.35", linestyle=style, linewidth=1.2,
                     label=f"{recipe} alone, α = {smoothing:g}")
        if std is not None:
            axis.axhspan(mean - std, mean + std, color="0.5", alpha=0.12)
    for row in distilled:
        axis.scatter(row["teacher_accuracy"], row["accuracy"], s=46,
                     color=colors.get(row["key"][2], "grey"), marker=markers[row["key"][3]],
                     edgecolor="black", linewidth=0.5)
    if distilled:
        low = min(min(row["teacher_accuracy"], row["accuracy"]) for row in distilled)
        high = max(max(row["teacher_accuracy"], row["accuracy"]) for row in distilled)
        axis.plot([low, high], [low, high], color="0.7", linewidth=0.8, zorder=0,
                  label="student = teacher")
    handles = [Line2D([], [], color=color, marker="o", linestyle="", markersize=7,
                      label=f"teacher α = {alpha:g}") for alpha, color in colors.items()]
    handles += [Line2D([], [], color="black", marker=marker, linestyle="", fillstyle="none",
                       label=f"T = {temperature:g}") for temperature, marker in markers.items()]
    axis.legend(handles=handles + axis.get_legend_handles_labels()[0], fontsize=8, loc="best")
    axis.set_xlabel(f"teacher test accuracy ({comparison.VIEWS[view]})")
    axis.set_ylabel(f"student test accuracy ({comparison.VIEWS[view]})")
    axis.grid(alpha=0.3)
    axis.set_title("distilled students against their teachers, coloured by the teacher's α",
                   fontsize=10)
    return figures.save_figure(figure, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="<plot stem>.json files of the study's runs")
    parser.add_argument("--plot", default="distillation.png",
                        help="figure; the table goes beside it as <stem>.md")
    parser.add_argument("--view", choices=tuple(comparison.VIEWS), default="one_view",
                        help="one_view (the default: the network alone) or tta (the recipe's "
                             "test-time views)")
    args = parser.parse_args(argv)
    try:
        runs = [comparison.load_run(path) for path in args.runs]
    except NotARunError as error:
        print(f"distillation_table.py: error: {error}", file=sys.stderr)
        return 2
    rows = [describe(run, args.view) for run in runs]
    summary = summarise(rows)
    text = markdown(summary, args.view)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)
    write_text(os.path.splitext(args.plot)[0] + ".md", text)
    plot(args.plot, rows, summary, args.view)
    return 0


if __name__ == "__main__":
    sys.exit(main())
