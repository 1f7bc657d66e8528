import json
import statistics

import compare
from pyimagesearch import comparison, recipes


def metrics_block(accuracy, confidence, nll, ece, brier, temperature, ece_scaled):
    return {"test_metrics": {"accuracy": accuracy, "mean_confidence": confidence, "nll": nll,
                             "ece": ece, "brier": brier},
            "temperature": temperature, "test_metrics_temperature_scaled": {"ece": ece_scaled}}


def write_run(folder, name, method, smoothing, seed, tta_block, one_view_block=None,
              recipe="fast", train_images=45000):
    run = {
        "method": method, "args": {"smoothing": smoothing, "seed": seed, "recipe": recipe},
        "recipe": {"tta": "none" if one_view_block is None else "flip_translate"},
        "data": {"train_images": train_images},
        "history": {"loss": [1.5, 1.0], "val_accuracy": [0.5, 0.9]},
        "epochs_completed": 2,
        **tta_block,
        "reliability_bins": {"count": [0] * 14 + [10], "mean_confidence": [None] * 14 + [0.97],
                             "accuracy": [None] * 14 + [0.9]},
        "wall_seconds": 61.4,
    }
    if one_view_block is not None:
        run["one_view"] = one_view_block
    path = folder / f"{name}.json"
    path.write_text(json.dumps(run))
    return str(path)


def section(printed, title):
    """The table under the heading `## title`."""
    return printed.split(f"## {title}\n\n", 1)[1].split("\n\n", 1)[0]


def test_tables_per_view_summary_and_figure(tmp_path, capsys):
    paths = [
        write_run(tmp_path, "a", "loss", 0.1, 1,
                  tta_block=metrics_block(0.90, 0.80, 0.35, 0.020, 0.15, 0.6, 0.010),
                  one_view_block=metrics_block(0.88, 0.83, 0.40, 0.030, 0.17, 0.7, 0.012)),
        write_run(tmp_path, "b", "loss", 0.1, 2,
                  tta_block=metrics_block(0.92, 0.82, 0.31, 0.030, 0.13, 0.5, 0.012),
                  one_view_block=metrics_block(0.89, 0.84, 0.38, 0.040, 0.16, 0.8, 0.014)),
        # no test-time views: its test metrics are one view's
        write_run(tmp_path, "c", "loss", 0.0, 1,
                  tta_block=metrics_block(0.70, 0.75, 0.9, 0.05, 0.4, 1.1, 0.04),
                  recipe="overfit", train_images=5000),
    ]
    plot = tmp_path / "cmp" / "compare.png"
    assert compare.main(paths + ["--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    one_view = section(printed, "Runs, one view")
    tta = section(printed, "Runs, test-time augmentation")
    assert ("| a | fast, 45000 images | loss | 0.1 | 1 | 2 | 0.8800 | 0.8300 | 0.4000 | 0.0300 | "
            "0.1700 | 0.7000 | 0.0120 | 61 |") in one_view
    assert ("| a | fast, 45000 images | loss | 0.1 | 1 | 2 | 0.9000 | 0.8000 | 0.3500 | 0.0200 | "
            "0.1500 | 0.6000 | 0.0100 | 61 |") in tta
    assert "| c | overfit, 5000 images | loss | 0 | 1 | 2 | 0.7000 | 0.7500 |" in one_view
    assert "| c |" not in tta
    summary = section(printed, "Mean ± std over seeds, one view")
    mean, std = statistics.mean([0.88, 0.89]), statistics.stdev([0.88, 0.89])  # sample std
    t_mean, t_std = statistics.mean([0.7, 0.8]), statistics.stdev([0.7, 0.8])
    assert f"| fast, 45000 images | loss | 0.1 | 2 | 2 | {mean:.4f} ± {std:.4f} |" in summary
    assert f"| {t_mean:.4f} ± {t_std:.4f} |" in summary
    assert "| overfit, 5000 images | loss | 0 | 2 | 1 | 0.7000 | 0.7500 |" in summary  # no std of 1
    assert (tmp_path / "cmp" / "compare.md").read_text().strip() == printed.strip()
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_file_that_is_not_a_run_is_a_clear_error(tmp_path, capsys):
    not_json = tmp_path / "notes.json"
    not_json.write_text("hello")
    other_json = tmp_path / "other.json"
    other_json.write_text(json.dumps({"loss": [1.0]}))
    for path, fault in ((not_json, "not JSON"), (other_json, "not a finished run's JSON"),
                        (tmp_path / "missing.json", "cannot read")):
        assert compare.main([str(path), "--plot", str(tmp_path / "c.png")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"compare.py: error: {path}: {fault}") and err.count("\n") == 1
    assert not (tmp_path / "c.png").exists()


def test_regime_names_the_recipe_entries_a_run_changed():
    overfit = dict(recipes.RECIPES["overfit"])
    run = {"args": {"recipe": "overfit"}, "data": {"train_images": 5000}, "recipe": overfit}
    assert comparison.regime(run) == "overfit, 5000 images"
    run["recipe"] = dict(overfit, weight_decay=0.0, epochs=3)  # epochs: a column of its own
    assert comparison.regime(run) == "overfit, 5000 images, weight_decay 0"
    run["recipe"] = dict(overfit, weight_decay=0.0, lr=0.2)
    assert comparison.regime(run) == "overfit, 5000 images, lr 0.2, weight_decay 0"
