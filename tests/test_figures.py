"""The figures say what they show: checked through the matplotlib objects each plot function
returns, from result dicts built here as a run's JSON holds them."""
import json

import matplotlib.colors
import numpy as np
import pytest

from pyimagesearch import augment, comparison, figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bins(counts):
    """Reliability bins as the JSON holds them: None where a bin is empty."""
    filled = [count > 0 for count in counts]
    edges = np.linspace(0, 1, len(counts) + 1)
    middles = (edges[:-1] + edges[1:]) / 2
    return {"count": list(counts),
            "mean_confidence": [float(m) if f else None for m, f in zip(middles, filled)],
            "accuracy": [float(min(1.0, m + 0.05)) if f else None
                         for m, f in zip(middles, filled)]}


def make_result(method="func", smoothing=0.05, recipe="overfit", tta="flip_translate", seed=42,
                epochs=3, **extra):
    summary = {"func": "labels smoothed in advance", "loss": "smoothing inside the loss"}
    result = {
        "method": method, "method_summary": summary[method],
        "args": {"smoothing": smoothing, "recipe": recipe, "seed": seed},
        "recipe": {"tta": tta},
        "data": {"train_images": 5000},
        "history": {"loss": list(np.linspace(2.0, 1.0, epochs)),
                    "accuracy": list(np.linspace(0.3, 0.7, epochs)),
                    "val_loss": list(np.linspace(1.8, 1.1, epochs)),
                    "val_accuracy": list(np.linspace(0.35, 0.6, epochs))},
        "epochs_completed": epochs, "diverged": False,
        "test_metrics": {"ece": 0.1234}, "temperature": 0.6012,
        "test_metrics_temperature_scaled": {"ece": 0.0156},
        "reliability_bins": bins([0, 0, 3, 40, 120, 300, 0, 800, 2000, 5000]),
        "wall_seconds": 10.0,
    }
    result.update(extra)
    return result


def legend_texts(axis):
    legend = axis.get_legend()
    return [] if legend is None else [text.get_text() for text in legend.get_texts()]


def test_history_figure_names_method_smoothing_recipe_and_epochs(tmp_path):
    path = tmp_path / "run.png"
    figure = figures.plot_history(str(path), make_result())
    assert path.read_bytes()[:8] == PNG_MAGIC
    title = figure._suptitle.get_text()
    for part in ("Method 1: labels smoothed in advance", "α = 0.05", "recipe overfit",
                 "3 epochs"):
        assert part in title
    assert "DIVERGED" not in title
    loss_axis, accuracy_axis = figure.axes
    assert legend_texts(loss_axis) == ["train loss (smoothed targets, α=0.05)",
                                       "validation loss (hard labels)"]
    assert legend_texts(accuracy_axis) == ["train accuracy", "validation accuracy (hard labels)"]
    # the curves are the history's values, epoch 1 first
    np.testing.assert_allclose(loss_axis.lines[0].get_xydata(),
                               np.c_[[1, 2, 3], np.linspace(2.0, 1.0, 3)])
    assert not any(axis.get_title().startswith("loss") for axis in figure.axes)


def test_history_without_smoothing_and_a_diverged_run(tmp_path):
    plain = figures.plot_history(str(tmp_path / "a.png"), make_result(method="loss", smoothing=0))
    assert legend_texts(plain.axes[0])[0] == "train loss"
    assert "Method 2: smoothing inside the loss" in plain._suptitle.get_text()
    diverged = make_result(diverged=True)
    diverged["history"]["loss"][-1] = None  # JSON's null for the NaN epoch
    figure = figures.plot_history(str(tmp_path / "b.png"), diverged)
    assert "DIVERGED" in figure._suptitle.get_text()
    assert np.isnan(figure.axes[0].lines[0].get_ydata()[-1])


@pytest.mark.parametrize("tta", sorted(augment.TTA_VIEWS))
def test_view_counts_match_the_test_time_views(tta):
    count, description = figures.VIEW_DESCRIPTIONS[tta]
    assert count == len(augment.TTA_VIEWS[tta])
    assert description.startswith("one view" if count == 1 else f"{count} views")


def reliability_curves(axis):
    """{legend label: (line, marker collection)} of the reliability curves drawn on `axis`."""
    curves = {}
    for line in axis.lines:
        label = line.get_label()
        if not label.startswith("_") and label != "perfect calibration":
            curves[label] = line
    return curves


@pytest.mark.parametrize("tta, views", [("none", "one view"), ("flip", "2 views averaged"),
                                        ("flip_translate", "6 views averaged")])
def test_calibration_title_names_the_test_set_views(tmp_path, tta, views):
    path = tmp_path / "run_calibration.png"
    figure = figures.plot_calibration(str(path), make_result(tta=tta))
    assert path.read_bytes()[:8] == PNG_MAGIC
    title = figure._suptitle.get_text()
    assert f"test set, 8,263 images, {views}" in title and "α = 0.05" in title


def test_calibration_after_temperature_curve_only_where_the_json_has_its_bins(tmp_path):
    old = figures.plot_calibration(str(tmp_path / "old.png"), make_result())
    reliability_axis, histogram_axis = old.axes
    assert list(reliability_curves(reliability_axis)) == ["as trained (ECE 0.123)"]
    # the ECE after scaling and the temperature are in the title even without the bins
    assert "0.016 after temperature scaling (T = 0.60)" in reliability_axis.get_title()
    assert len(histogram_axis.patches) == 1

    scaled_counts = [0, 0, 0, 10, 50, 200, 400, 1200, 3000, 3403]
    new = figures.plot_calibration(str(tmp_path / "new.png"), make_result(
        reliability_bins_temperature_scaled=bins(scaled_counts)))
    reliability_axis, histogram_axis = new.axes
    curves = reliability_curves(reliability_axis)
    assert list(curves) == ["as trained (ECE 0.123)",
                            "after temperature scaling, T = 0.60 (ECE 0.016)"]
    after = curves["after temperature scaling, T = 0.60 (ECE 0.016)"]
    expected = bins(scaled_counts)
    filled = [i for i, count in enumerate(scaled_counts) if count]
    np.testing.assert_allclose(after.get_xdata(), [expected["mean_confidence"][i] for i in filled])
    # the histogram is the bins' counts, before and after
    heights = [patch.get_data().values for patch in histogram_axis.patches]
    np.testing.assert_array_equal(heights[0], make_result()["reliability_bins"]["count"])
    np.testing.assert_array_equal(heights[1], scaled_counts)


def test_bin_markers_grow_with_the_images_in_the_bin(tmp_path):
    result = make_result()
    figure = figures.plot_calibration(str(tmp_path / "c.png"), result)
    markers = figure.axes[0].collections[0]
    counts = np.array(result["reliability_bins"]["count"])
    filled = counts[counts > 0]
    sizes = markers.get_sizes()
    assert len(sizes) == len(filled)
    order = np.argsort(filled)
    assert np.all(np.diff(sizes[order]) > 0)  # strictly larger for more images
    assert sizes[order[-1]] / sizes[order[0]] > 10  # 3 images against 5,000 look different


def comparison_runs():
    runs = []
    for smoothing in (0.0, 0.1, 0.2):
        for seed in (1, 2):
            run = make_result(method="loss", smoothing=smoothing, seed=seed, recipe="overfit")
            run["recipe"] = {"tta": "none", "weight_decay": 0.0}
            runs.append(run)
    return runs


def test_comparison_colours_by_smoothing_and_styles_by_seed(tmp_path):
    runs = comparison_runs()
    path = tmp_path / "compare.png"
    figure = figures.plot_comparison(str(path), runs)
    assert path.read_bytes()[:8] == PNG_MAGIC
    curve_axis = figure.axes[0]
    order = sorted(runs, key=lambda run: (run["args"]["smoothing"], run["args"]["seed"]))
    lines = curve_axis.lines
    assert len(lines) == len(order)
    colour = {}
    style = {}
    for run, line in zip(order, lines):
        colour.setdefault(run["args"]["smoothing"], set()).add(
            matplotlib.colors.to_hex(line.get_color()))
        style.setdefault(run["args"]["seed"], set()).add(line.get_linestyle())
    assert all(len(colours) == 1 for colours in colour.values())  # one colour per α
    assert len({next(iter(colours)) for colours in colour.values()}) == 3  # different α differ
    assert all(len(styles) == 1 for styles in style.values())
    assert len({next(iter(styles)) for styles in style.values()}) == 2
    legend = legend_texts(curve_axis)
    assert legend == ["α = 0", "α = 0.1", "α = 0.2", "seed 1", "seed 2"]
    title = figure._suptitle.get_text()
    assert f"regime: {comparison.regime(runs[0])}" in title
    assert "one view" in title


def test_penultimate_panels_share_one_scale(tmp_path):
    rng = np.random.default_rng(0)
    # a tight cluster and a broad one: on one scale the tight one must look tight
    tight = rng.normal(scale=0.5, size=(60, 2))
    broad = rng.normal(scale=20.0, size=(60, 2)) + [30, -10]
    labels = np.repeat([0, 1, 2], 20)
    panels = [[{"title": "α = 0", "points": broad, "labels": labels},
               {"title": "α = 0.1", "points": tight, "labels": labels}],
              [{"title": "α = 0 test", "points": broad * 0.5, "labels": labels},
               {"title": "α = 0.1 test", "points": tight, "labels": labels}]]
    path = tmp_path / "penultimate.png"
    figure = figures.plot_penultimate(str(path), panels, ["airplane", "automobile", "bird"])
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert len(figure.axes) == 4
    x_limits = {tuple(np.round(axis.get_xlim(), 9)) for axis in figure.axes}
    y_limits = {tuple(np.round(axis.get_ylim(), 9)) for axis in figure.axes}
    assert len(x_limits) == 1 and len(y_limits) == 1
    (x_low, x_high), = x_limits
    (y_low, y_high), = y_limits
    everything = np.concatenate([broad, tight, broad * 0.5])
    assert x_low <= everything[:, 0].min() and x_high >= everything[:, 0].max()
    assert y_low <= everything[:, 1].min() and y_high >= everything[:, 1].max()
    for axis in figure.axes:
        assert "airplane" in axis.get_xlabel() and "bird" in axis.get_ylabel()


def test_redraw_from_json_writes_both_figures_beside_it(tmp_path, capsys):
    finished = tmp_path / "loss.json"
    finished.write_text(json.dumps(make_result(method="loss")))
    diverged = make_result(diverged=True)
    del diverged["reliability_bins"]  # a diverged run stops before its test metrics
    stopped = tmp_path / "stopped.json"
    stopped.write_text(json.dumps(diverged))
    assert figures.main([str(finished), str(stopped)]) == 0
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "loss_calibration.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "stopped.png").read_bytes()[:8] == PNG_MAGIC
    assert not (tmp_path / "stopped_calibration.png").exists()
    assert "wrote" in capsys.readouterr().out
