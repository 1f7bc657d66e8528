"""Every figure the project draws, each from data a JSON file holds, so any of them can be redrawn
without retraining:

    python -m pyimagesearch.figures runs/loss.json [more runs' JSON ...]

redraws `<stem>.png` (training curves) and `<stem>_calibration.png` (reliability on the test set)
beside each run's JSON. A run's figures take its result dict (what `<stem>.json` holds);
`plot_comparison` takes several (compare.py); `plot_penultimate` takes projected activations
(experiments/penultimate_projection.py). Each plot function writes its file atomically and
returns the matplotlib Figure, closed, so that what was drawn can be read back.
"""
import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
import numpy as np  # noqa: E402

from pyimagesearch import comparison, outputs  # noqa: E402

# The scripts' method names, numbered as the README and the scripts' docstrings number them.
METHOD_NUMBERS = {"func": 1, "loss": 2}

# What the test set was scored on, per recipe `tta` (augment.TTA_VIEWS holds the views; a test
# checks these counts against it, so that this module needs no Keras import).
VIEW_DESCRIPTIONS = {
    "none": (1, "one view"),
    "flip": (2, "2 views averaged: image and mirror"),
    "flip_translate": (6, "6 views averaged: image and mirror, unshifted and shifted 1 px"),
}

# Smallest and largest marker area (points²) of a reliability bin: area grows with the bin's
# image count, so a bin of a few images cannot pass for one of thousands.
BIN_MARKER_AREA = (6.0, 260.0)


def save_figure(figure, path):
    """Lay out, write atomically and close a matplotlib figure; return it, still readable."""
    figure.tight_layout()
    with outputs.atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110)
    plt.close(figure)
    return figure


def series(values):
    """A history list as floats, None (a diverged epoch's NaN in JSON) as NaN."""
    return np.array([np.nan if value is None else value for value in values or []], float)


def method_title(result):
    """'Method 2: smoothing inside the loss'; the bare name for a method not numbered here."""
    number = METHOD_NUMBERS.get(result["method"])
    summary = result.get("method_summary", result["method"])
    return f"Method {number}: {summary}" if number else summary


def run_title(result):
    """Method, α, recipe and epochs of a run, and DIVERGED where it did."""
    args = result["args"]
    epochs = len(result.get("history", {}).get("loss") or [])
    title = f"{method_title(result)} | α = {args['smoothing']:g} | recipe {args['recipe']}"
    title += f" | {epochs} epoch{'s' * (epochs != 1)}"
    if result.get("diverged"):
        title += " | DIVERGED (loss NaN or infinite)"
    return title


def views_description(tta):
    """How the test set was scored: 'one view', '2 views averaged: ...'."""
    return VIEW_DESCRIPTIONS.get(tta, (None, f"test-time views '{tta}'"))[1]


def train_loss_label(smoothing):
    """The training loss is cross-entropy against the targets the network was trained on;
    `smoothing` None: a factor not known to the caller."""
    if smoothing is None:
        return "train loss (smoothed targets)"
    if smoothing > 0:
        return f"train loss (smoothed targets, α={smoothing:g})"
    return "train loss"


def plot_history(path, result):
    """Cross-entropy (left) and accuracy (right) per epoch of one run, titled with its method,
    α, recipe and epochs."""
    return plot_history_curves(path, result["history"], result["args"]["smoothing"],
                               run_title(result))


def plot_history_curves(path, history, smoothing, title):
    """The figure of plot_history from a history dict ('loss', 'accuracy', 'val_loss',
    'val_accuracy': lists per epoch), the smoothing factor and a title."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11.5, 4.4))
    curves = ((loss_axis, "loss", train_loss_label(smoothing),
               "validation loss (hard labels)"),
              (accuracy_axis, "accuracy", "train accuracy", "validation accuracy (hard labels)"))
    for axis, metric, train_label, validation_label in curves:
        for key, label in ((metric, train_label), (f"val_{metric}", validation_label)):
            values = series(history.get(key))
            if values.size:
                axis.plot(np.arange(1, values.size + 1), values, marker=".", label=label)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=9)
    loss_axis.set_ylabel("cross-entropy (nats)")
    accuracy_axis.set_ylabel("accuracy")
    if smoothing is None or smoothing > 0:  # the floor is why the two losses differ in level
        loss_axis.set_title("smoothed targets keep the train loss above their entropy",
                            fontsize=9)
    figure.suptitle(title)
    return save_figure(figure, path)


def bin_arrays(bins):
    """(count, mean confidence, accuracy) arrays of a JSON `reliability_bins` dict; empty bins'
    None as NaN."""
    return (np.asarray(bins["count"], float), series(bins["mean_confidence"]),
            series(bins["accuracy"]))


def bin_marker_sizes(counts, largest_count=None):
    """Marker area per bin, proportional to its image count (the largest count, or
    `largest_count`, gets the largest area); empty bins get 0."""
    counts = np.asarray(counts, float)
    largest = largest_count or counts.max() or 1.0
    smallest_area, largest_area = BIN_MARKER_AREA
    return np.where(counts > 0, smallest_area + (largest_area - smallest_area) * counts / largest,
                    0.0)


def draw_reliability(axis, bins, label, color, linestyle="-", largest_count=None):
    """Accuracy against mean confidence of the filled bins, a marker per bin sized by its
    count."""
    counts, confidence, accuracy = bin_arrays(bins)
    filled = counts > 0
    axis.plot(confidence[filled], accuracy[filled], color=color, linestyle=linestyle,
              linewidth=1.3, label=label)
    axis.scatter(confidence[filled], accuracy[filled],
                 s=bin_marker_sizes(counts, largest_count)[filled], color=color, alpha=0.75,
                 edgecolors="white", linewidths=0.5, zorder=3, clip_on=False)


def reliability_axes(axis):
    axis.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1,
              label="perfect calibration")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.02)
    axis.set_aspect("equal")
    axis.set_xlabel("confidence (top-class probability), mean per bin")
    axis.set_ylabel("accuracy per bin")
    axis.grid(alpha=0.3)


def _ece_text(ece):
    return "–" if ece is None else f"{ece:.3f}"


def plot_calibration(path, result):
    """Reliability diagram (left) and confidence histogram (right) of a run's test set, with the
    views the run scored it on, before and (where the JSON has those bins) after temperature
    scaling."""
    return plot_calibration_bins(
        path, run_title(result), result.get("recipe", {}).get("tta"),
        result["reliability_bins"], result["test_metrics"]["ece"],
        after=result.get("reliability_bins_temperature_scaled"),
        temperature=result.get("temperature"),
        ece_after=(result.get("test_metrics_temperature_scaled") or {}).get("ece"))


def calibration_summary(ece_before, ece_after=None, temperature=None):
    """'ECE 0.112 as trained → 0.012 after temperature scaling (T = 0.60)'."""
    text = f"ECE {_ece_text(ece_before)} as trained"
    if ece_after is not None:
        text += f" → {_ece_text(ece_after)} after temperature scaling"
    if temperature is not None:
        text += f" (T = {temperature:.2f})"
    return text


def plot_calibration_bins(path, title, tta, before, ece_before, after=None, temperature=None,
                          ece_after=None):
    """The figure of plot_calibration from reliability bins ({'count', 'mean_confidence',
    'accuracy'} lists, as the JSON holds them): `before` temperature scaling and, if given,
    `after` it; `tta` None where the views are not known."""
    largest = max(max(before["count"]), max(after["count"]) if after else 0)
    figure, (reliability_axis, histogram_axis) = plt.subplots(
        1, 2, figsize=(11.5, 6.0), gridspec_kw={"width_ratios": [1.1, 1]})
    reliability_axes(reliability_axis)
    draw_reliability(reliability_axis, before, color="tab:blue", largest_count=largest,
                     label=f"as trained (ECE {_ece_text(ece_before)})")
    after_name = "after temperature scaling" + ("" if temperature is None
                                                else f", T = {temperature:.2f}")
    if after:
        draw_reliability(reliability_axis, after, color="tab:orange", largest_count=largest,
                         label=f"{after_name} (ECE {_ece_text(ece_after)})")
    # below the axes: inside, it would hide the top bins, where most images are
    reliability_axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13),
                            title="marker area ∝ images in bin", title_fontsize=8)
    reliability_axis.set_title(f"{calibration_summary(ece_before, ece_after, temperature)}\n"
                               "above the diagonal under-confident, below over-confident",
                               fontsize=9)

    edges = np.linspace(0, 1, len(before["count"]) + 1)
    histogram_axis.stairs(before["count"], edges, fill=True, color="tab:blue", alpha=0.45,
                          label="as trained")
    if after:
        histogram_axis.stairs(after["count"], edges, color="tab:orange", linewidth=1.6,
                              label=after_name)
    histogram_axis.set_xlim(0, 1)
    histogram_axis.set_xlabel("confidence (top-class probability)")
    histogram_axis.set_ylabel("test images per bin")
    histogram_axis.grid(alpha=0.3)
    histogram_axis.legend(fontsize=8, loc="upper left")
    views = "" if tta is None else f", {views_description(tta)}"
    figure.suptitle(f"{title}\ntest set, {int(sum(before['count'])):,} images{views}; "
                    f"{len(before['count'])} confidence bins")
    return save_figure(figure, path)


def smoothing_colors(runs):
    """{α: colour}: one colour per smoothing factor, in order along a sequential colormap."""
    values = sorted({run["args"]["smoothing"] for run in runs})
    colormap = matplotlib.colormaps["viridis"]
    # stop before the colormap's pale yellow end, which is hard to see on white
    positions = np.linspace(0.0, 0.85, len(values)) if len(values) > 1 else [0.0]
    return {value: colormap(position) for value, position in zip(values, positions)}


SEED_LINESTYLES = ("-", "--", ":", "-.")


def seed_linestyles(runs):
    """{seed: line style}, in seed order (styles repeat after four seeds)."""
    seeds = sorted({run["args"]["seed"] for run in runs})
    return {seed: SEED_LINESTYLES[index % len(SEED_LINESTYLES)]
            for index, seed in enumerate(seeds)}


def comparison_title(runs):
    """The regimes (comparison.regime), methods and test views the runs share."""
    regimes = sorted({comparison.regime(run) for run in runs})
    methods = sorted({method_title(run) for run in runs})
    views = sorted({views_description(run.get("recipe", {}).get("tta", "none")) for run in runs})
    return (f"regime: {'; '.join(regimes)} | {', '.join(methods)}\n"
            f"{len(runs)} runs coloured by smoothing α, line style by seed | test set, "
            f"{'; '.join(views)}")


def plot_comparison(path, runs):
    """Validation accuracy per epoch (left) and test reliability diagrams (right) of finished
    runs (compare.py's figure): colour by α, line style by seed."""
    colors, styles = smoothing_colors(runs), seed_linestyles(runs)
    largest = max(max(run["reliability_bins"]["count"]) for run in runs)
    figure, (curve_axis, reliability_axis) = plt.subplots(
        1, 2, figsize=(13, 5.6), gridspec_kw={"width_ratios": [1.25, 1]})
    reliability_axes(reliability_axis)
    order = sorted(runs, key=lambda run: (run["args"]["smoothing"], run["args"]["seed"]))
    for run in order:
        color = colors[run["args"]["smoothing"]]
        style = styles[run["args"]["seed"]]
        accuracy = series(run["history"].get("val_accuracy"))
        if accuracy.size:
            curve_axis.plot(np.arange(1, accuracy.size + 1), accuracy, color=color,
                            linestyle=style, linewidth=1.4)
        draw_reliability(reliability_axis, run["reliability_bins"], label=None, color=color,
                         linestyle=style, largest_count=largest)
    curve_axis.set_xlabel("epoch")
    curve_axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    curve_axis.set_ylabel("validation accuracy (hard labels)")
    curve_axis.grid(alpha=0.3)
    smoothing_handles = [Line2D([], [], color=color, linewidth=2.5, label=f"α = {value:g}")
                         for value, color in colors.items()]
    seed_handles = [Line2D([], [], color="black", linestyle=style, label=f"seed {seed}")
                    for seed, style in styles.items()]
    curve_axis.legend(handles=smoothing_handles + seed_handles, fontsize=8, loc="lower right")
    reliability_axis.set_title("test reliability, as trained; marker area ∝ images in bin\n"
                               "above the diagonal under-confident, below over-confident",
                               fontsize=9)
    figure.suptitle(comparison_title(runs), fontsize=11)
    return save_figure(figure, path)


def shared_limits(point_sets, margin=0.05):
    """((x low, x high), (y low, y high)) covering every (N, 2) array of `point_sets`, widened
    by `margin` of the span on each side: one scale for all panels."""
    points = np.concatenate([np.asarray(points, float) for points in point_sets])
    low, high = points.min(axis=0), points.max(axis=0)
    pad = margin * np.maximum(high - low, 1e-12)
    return (low[0] - pad[0], high[0] + pad[0]), (low[1] - pad[1], high[1] + pad[1])


def plot_penultimate(path, panels, class_names):
    """Müller et al.'s Figure 1: a grid of scatter plots of penultimate activations projected on
    the plane of three class templates, on one scale so that cluster sizes compare across
    panels. `panels`: rows of {'title', 'points' (N, 2), 'labels' (N,) index into
    `class_names`}."""
    rows, columns = len(panels), len(panels[0])
    x_limits, y_limits = shared_limits([panel["points"] for row in panels for panel in row])
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 4.6 * rows),
                                squeeze=False)
    for row_index, row in enumerate(panels):
        for column_index, panel in enumerate(row):
            axis = axes[row_index, column_index]
            points, labels = np.asarray(panel["points"]), np.asarray(panel["labels"])
            for class_index, name in enumerate(class_names):
                mine = labels == class_index
                axis.scatter(points[mine, 0], points[mine, 1], s=4, alpha=0.5, label=name)
            axis.set_title(panel["title"], fontsize=10)
            axis.set_xlim(*x_limits)
            axis.set_ylim(*y_limits)
            axis.set_aspect("equal", adjustable="box")
            axis.grid(alpha=0.3)
            axis.set_xlabel(f"along {class_names[0]} → {class_names[1]} template")
            axis.set_ylabel(f"toward {class_names[2]} template")
            axis.legend(markerscale=3, fontsize=8)
    figure.suptitle("penultimate activations projected on the plane of three class templates "
                    f"({class_names[0]} template at 0; one scale for every panel)")
    return save_figure(figure, path)


def redraw(json_path):
    """Redraw a run's `<stem>.png` and, for a finished run, `<stem>_calibration.png` from its
    JSON; return the paths written."""
    result = comparison.read_json(json_path)
    finished = isinstance(result, dict) and "reliability_bins" in result  # a diverged run
    comparison.check_run(result, json_path, finished)                     # has no test metrics
    stem = os.path.splitext(json_path)[0]
    written = [f"{stem}.png"]
    plot_history(written[0], result)
    if finished:
        written.append(f"{stem}_calibration.png")
        plot_calibration(written[1], result)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m pyimagesearch.figures",
        description="Redraw a run's <stem>.png and <stem>_calibration.png from its <stem>.json.")
    parser.add_argument("runs", nargs="+", help="<plot stem>.json files written by the scripts")
    args = parser.parse_args(argv)
    for json_path in args.runs:
        try:
            written = redraw(json_path)
        except comparison.NotARunError as error:  # names the file and the fault
            print(f"figures: error: {error}", file=sys.stderr)
            return 2
        except OSError as error:  # writing a figure
            print(f"figures: error: {json_path}: {error!r}", file=sys.stderr)
            return 2
        print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
