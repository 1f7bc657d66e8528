"""Both scripts end to end through main(argv) on a tiny dataset the tests write."""
import json
import os

import keras
import numpy as np
import pytest

import label_smoothing_func
import label_smoothing_loss
from conftest import tiny_argv
from pyimagesearch.cifar10 import CLASS_NAMES, load_cifar10
from pyimagesearch.pipeline import predict_logits


@pytest.mark.parametrize("script", [label_smoothing_func, label_smoothing_loss])
def test_script_writes_every_output(script, tiny_cifar, tmp_path, capsys):
    plot = tmp_path / "out" / "run.png"  # the folder is created
    assert script.main(tiny_argv(tiny_cifar, plot, "--epochs", "2", "--smoothing", "0.2")) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith("data: ")
    assert "120 train / 40 val / 30 test images" in printed
    assert "done: " in printed and "test accuracy" in printed

    folder = tmp_path / "out"
    assert sorted(os.listdir(folder)) == ["run.json", "run.keras", "run.png",
                                          "run_calibration.png", "run_report.txt"]
    # (the resume backup is gone)
    assert (folder / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (folder / "run_report.txt").read_text()
    assert all(name in report for name in CLASS_NAMES)

    result = json.loads((folder / "run.json").read_text())
    method = script.METHOD.name
    assert result["method"] == method and result["args"]["smoothing"] == 0.2
    assert result["epochs_completed"] == 2 and not result["diverged"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds"):
        assert len(result["history"][key]) == 2 and all(v is not None for v in result["history"][key])
    report_dict = result["classification_report"]
    assert result["test_accuracy"] == pytest.approx(report_dict["accuracy"])
    assert sum(report_dict[name]["support"] for name in CLASS_NAMES) == 30
    assert f"{report_dict['accuracy']:.4f}" in report  # text and dict reports agree
    assert result["data"] == {"source": os.path.abspath(tiny_cifar), "train_images": 120,
                              "val_images": 40, "test_images": 30}
    assert sum(result["reliability_bins"]["count"]) == 30
    assert set(result["test_metrics"]) == {"accuracy", "nll", "ece", "brier", "mean_confidence"}
    assert result["test_metrics"]["accuracy"] == result["test_accuracy"]
    assert 0 <= result["test_metrics"]["ece"] <= 1 and 0 <= result["test_metrics"]["brier"] <= 2
    assert f"ECE {result['test_metrics']['ece']:.4f}" in printed  # in the closing summary line
    assert result["temperature"] > 0
    assert 0 < sum(result["history"]["seconds"]) < result["wall_seconds"]
    assert result["versions"]["keras"].startswith("3.")
    assert result["precision"] == "float32"

    # The saved model, fed test images standardised with the saved statistics, reproduces the
    # reported test accuracy.
    model = keras.saving.load_model(folder / "run.keras")
    data = load_cifar10(tiny_cifar)
    test_images, test_labels = data.test_images[:30], data.test_labels[:30]
    mean, std = (np.array(result["normalization"][key], np.float32) for key in ("mean", "std"))
    np.testing.assert_allclose(mean, data.train_images[:120].reshape(-1, 3).mean(axis=0),
                               rtol=1e-5)
    logits = predict_logits(model, test_images, mean, std, result["recipe"]["tta"])
    assert (logits.argmax(axis=1) == test_labels).mean() == result["test_accuracy"]


def test_tutorial_recipe_runs(tiny_cifar, tmp_path, capsys):
    """The 2019 setup (the book's ResNet, batch 64, polynomial decay) stays one flag away."""
    plot = tmp_path / "tutorial.png"
    argv = ["--dataset", tiny_cifar, "--plot", str(plot), "--recipe", "tutorial", "--epochs", "1",
            "--train-size", "80", "--val-size", "16", "--test-size", "20", "--precision",
            "float32"]
    assert label_smoothing_loss.main(argv) == 0
    result = json.loads((tmp_path / "tutorial.json").read_text())
    assert result["recipe"]["model"] == "preact_resnet" and result["recipe"]["batch_size"] == 64
    assert result["recipe"]["schedule"] == "polynomial" and result["recipe"]["lr"] == 5e-3
    assert "preact_resnet" in capsys.readouterr().out.splitlines()[0]
