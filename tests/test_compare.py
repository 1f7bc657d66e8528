import json
import statistics

import compare


def write_run(folder, name, method, smoothing, seed, accuracy, nll, ece, ece_scaled):
    run = {
        "method": method, "args": {"smoothing": smoothing, "seed": seed},
        "history": {"loss": [1.5, 1.0], "val_accuracy": [0.5, accuracy]},
        "epochs_completed": 2,
        "test_metrics": {"accuracy": accuracy, "nll": nll, "ece": ece},
        "test_metrics_temperature_scaled": {"ece": ece_scaled}, "temperature": 1.2,
        "reliability_bins": {"count": [0] * 14 + [10], "mean_confidence": [None] * 14 + [0.97],
                             "accuracy": [None] * 14 + [0.9]},
        "wall_seconds": 61.4,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(run))
    return str(path)


def test_table_summary_and_figure(tmp_path, capsys):
    paths = [write_run(tmp_path, "a", "loss", 0.1, 1, 0.90, 0.35, 0.020, 0.010),
             write_run(tmp_path, "b", "loss", 0.1, 2, 0.92, 0.31, 0.030, 0.012),
             write_run(tmp_path, "c", "func", 0.0, 1, 0.91, 0.40, 0.050, 0.011)]
    plot = tmp_path / "cmp" / "compare.png"
    assert compare.main(paths + ["--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "| a | loss | 0.1 | 1 | 2 | 0.9000 | 0.3500 | 0.0200 | 0.0100 | 61 |" in printed
    mean = statistics.mean([0.90, 0.92])
    std = statistics.stdev([0.90, 0.92])  # sample std, as the module documents
    assert f"| loss | 0.1 | 2 | 2 | {mean:.4f} ± {std:.4f} |" in printed
    assert "| func | 0 | 2 | 1 | 0.9100 | 0.4000 | 0.0500 | 0.0110 |" in printed  # no std of 1
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
