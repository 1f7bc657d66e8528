"""Both scripts end to end through main(argv) on a tiny dataset the tests write; the saved model
re-scored in a fresh Python that has Keras but not this package."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import label_smoothing_func
import label_smoothing_loss
from conftest import tiny_argv
from pyimagesearch import calibration
from pyimagesearch.cifar10 import CLASS_NAMES, load_cifar10
from pyimagesearch.recipes import RECIPES

pytestmark = pytest.mark.backend

# Run in a fresh interpreter, in a folder outside the repository: load the saved model with Keras
# alone and score it with test-time views built in numpy (augment.TTA_VIEWS' weights).
RESCORE = r"""
import json, sys
import keras, numpy as np
model_path, arrays_path, tta = sys.argv[1:]
arrays = np.load(arrays_path)
model = keras.saving.load_model(model_path)
assert model.input.dtype == "uint8", model.input.dtype

def logits(images):
    return keras.ops.convert_to_numpy(model.predict(images, verbose=0)).astype(np.float64)

def flip_mean(images):
    return (logits(images) + logits(images[:, :, ::-1])) / 2

def with_views(images):
    padded = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)], "reflect")
    up_left, down_right = padded[:, :-2, :-2], padded[:, 2:, 2:]
    return {"none": lambda: logits(images), "flip": lambda: flip_mean(images),
            "flip_translate": lambda: flip_mean(images) / 2
                              + (flip_mean(up_left) + flip_mean(down_right)) / 4}[tta]()

val_images = arrays["val_images"]
print(json.dumps({"test_logits": with_views(arrays["test_images"]).tolist(),
                  "val_logits": with_views(val_images).tolist(),
                  "val_logits_one_view": logits(val_images).tolist()}))
"""


def rescore_in_fresh_python(model_path, test_images, val_images, tta, folder):
    arrays = os.path.join(folder, "arrays.npz")
    np.savez(arrays, test_images=test_images, val_images=val_images)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run([sys.executable, "-c", RESCORE, str(model_path), arrays, tta],
                               cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return (np.array(result["test_logits"]), np.array(result["val_logits"]),
            np.array(result["val_logits_one_view"]))


@pytest.mark.parametrize("log_level", [None, "2"])
def test_a_run_in_a_fresh_process_writes_nothing_on_stderr(log_level, tiny_cifar, tmp_path):
    """Not TensorFlow's start-up lines (oneDNN, CUDA probing, cuInit, absl), whether the user
    left TF_CPP_MIN_LOG_LEVEL alone or exported 2 to silence them; 0 alone shows them."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if log_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = log_level
    completed = subprocess.run(
        [sys.executable, "label_smoothing_loss.py",
         *tiny_argv(tiny_cifar, tmp_path / "run.png", "--epochs", "1")],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env=env,
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert "f1-score" in completed.stdout  # the classification report


# A Ctrl-C at a chosen moment of the start-up: KeyboardInterrupt raised where the module named
# in argv[1] is first imported, then the script run as `python <script> <args>` would run it.
INTERRUPT_AT_IMPORT = r"""
import runpy, sys

module, sys.argv = sys.argv[1], sys.argv[2:]

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == module:
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("module, backed_up", [
    ("pyimagesearch.cli", False),   # while Python loads the package, before main()
    ("keras", False),               # while the backend loads, in the quiet block
    ("keras", True),                # the same, rerunning a run that has a backup
])
def test_ctrl_c_during_start_up_exits_130_with_one_line_and_no_traceback(
        module, backed_up, tiny_cifar, tmp_path):
    """Nothing of Python's traceback or TensorFlow's start-up lines; once main() runs, the line
    says whether there is a backup to resume from (read without loading Keras)."""
    if backed_up:
        backup = tmp_path / "run_backup"
        backup.mkdir()
        (backup / "state.json").write_text(json.dumps({"epoch": 2}))  # read, not resumed
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    completed = subprocess.run(
        [sys.executable, "-c", INTERRUPT_AT_IMPORT, module, "label_smoothing_loss.py",
         *tiny_argv(tiny_cifar, tmp_path / "run.png", "--epochs", "1")],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env=env,
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 130, completed.stderr
    assert "Traceback" not in completed.stderr and "absl" not in completed.stderr, \
        completed.stderr
    if module == "pyimagesearch.cli":
        assert completed.stderr == ""
    else:
        lines = completed.stderr.strip().splitlines()
        assert len(lines) == 1, completed.stderr
        assert lines[0].startswith("label_smoothing_loss.py: interrupted.")
        resumable = "run the same command again to resume" in lines[0]
        assert resumable == backed_up, lines[0]
    assert not (tmp_path / "run.lock").exists()


@pytest.mark.parametrize("script", [label_smoothing_func, label_smoothing_loss])
def test_script_writes_every_output(script, tiny_cifar, tmp_path, capsys):
    plot = tmp_path / "out" / "run.png"  # the folder is created
    assert script.main(tiny_argv(tiny_cifar, plot, "--epochs", "2", "--smoothing", "0.2")) == 0
    printed = capsys.readouterr().out
    import keras

    first = printed.splitlines()[0]
    assert first.startswith(f"backend: {keras.backend.backend()} | devices: cpu:0")
    assert "120 train / 40 val / 30 test images" in printed
    assert "epoch 1/2 took" in printed and "training ends in about" in printed

    folder = tmp_path / "out"
    assert sorted(os.listdir(folder)) == ["run.json", "run.keras", "run.png",
                                          "run_calibration.png", "run_history.csv",
                                          "run_report.txt"]
    # (the resume backup is gone)
    assert (folder / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads((folder / "run.json").read_text())
    assert result["method"] == script.METHOD.name and result["args"]["smoothing"] == 0.2
    assert result["backend"] == keras.backend.backend() and result["devices"] == ["cpu:0"]
    assert result["epochs_completed"] == 2 and not result["diverged"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds"):
        assert len(result["history"][key]) == 2 and None not in result["history"][key]
    assert result["data"] == {"source": os.path.abspath(tiny_cifar), "train_images": 120,
                              "val_images": 40, "test_images": 30}
    assert 0 < sum(result["history"]["seconds"]) < result["wall_seconds"]
    assert result["precision"] == "float32"
    # where the time went: every phase, adding up to the run's wall time
    assert list(result["phases"]) == ["load", "build", "fit_setup", "first_epoch",
                                      "later_epochs", "evaluation", "writing", "other"]
    assert result["phases"]["first_epoch"] == pytest.approx(result["history"]["seconds"][0],
                                                            abs=1e-3)
    assert sum(result["phases"].values()) == pytest.approx(result["wall_seconds"], rel=0.01)
    # the live log: one row per epoch, the history's numbers
    with open(folder / "run_history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row["val_loss"]) for row in rows] == \
        pytest.approx(result["history"]["val_loss"])
    if keras.backend.backend() == "jax":  # one training program, one per kind of prediction
        by_name = result["compiles"]["by_name"]
        assert sum(n for name, n in by_name.items() if "train_step" in name) == 1
        assert sum(n for name, n in by_name.items() if "predict_step" in name) == 2
    else:
        assert result["compiles"] is None

    # The saved model, in a fresh Python without this package, on raw uint8 images with test-time
    # views made in numpy, gives the reported test metrics and the fitted temperature's effect.
    data = load_cifar10(tiny_cifar)
    test_images, test_labels = data.test_images[:30], data.test_labels[:30]
    val_images, val_labels = data.train_images[120:160], data.train_labels[120:160]
    test_logits, val_logits, val_logits_one_view = rescore_in_fresh_python(
        folder / "run.keras", test_images, val_images, result["recipe"]["tta"], tmp_path)
    predictions = test_logits.argmax(axis=1)
    assert result["test_accuracy"] == pytest.approx((predictions == test_labels).mean())
    metrics = result["test_metrics"]
    log_probabilities = test_logits - np.log(np.exp(test_logits).sum(axis=1, keepdims=True))
    assert metrics["nll"] == pytest.approx(-log_probabilities[np.arange(30), test_labels].mean(),
                                           rel=1e-4)
    # the temperature is fitted on the validation logits with the recipe's views; the one-view
    # metrics' temperature on one view's
    assert result["temperature"] == pytest.approx(
        calibration.fit_temperature(val_logits, val_labels), rel=1e-3)
    assert result["one_view"]["temperature"] == pytest.approx(
        calibration.fit_temperature(val_logits_one_view, val_labels), rel=1e-3)
    assert result["one_view"]["test_metrics"]["accuracy"] is not None
    # the report counts each class's test images
    report = result["classification_report"]
    assert [report[name]["support"] for name in CLASS_NAMES] == \
        np.bincount(test_labels, minlength=10).tolist()


def test_tutorial_recipe_builds_the_book_resnet(tiny_cifar, tmp_path, capsys):
    """The 2019 setup (the book's ResNet, batch 64, no lookahead, one view) stays one flag away.
    Its val_loss is plain cross-entropy on hard labels: recomputed from the saved model."""
    plot = tmp_path / "tutorial.png"
    argv = ["--dataset", tiny_cifar, "--plot", str(plot), "--recipe", "tutorial", "--epochs", "1",
            "--train-size", "144", "--val-size", "16", "--test-size", "20", "--precision",
            "float32", "--smoothing", "0.3"]
    assert label_smoothing_loss.main(argv) == 0
    printed = capsys.readouterr().out
    assert "\n2/2 - " in printed  # 128 training images in batches of 64
    result = json.loads((tmp_path / "tutorial.json").read_text())
    data = load_cifar10(tiny_cifar)
    val_images, val_labels = data.train_images[128:144], data.train_labels[128:144]
    _, val_logits, _ = rescore_in_fresh_python(tmp_path / "tutorial.keras", data.test_images[:20],
                                            val_images, "none", tmp_path)
    log_probabilities = val_logits - np.log(np.exp(val_logits).sum(axis=1, keepdims=True))
    assert result["history"]["val_loss"][0] == pytest.approx(
        -log_probabilities[np.arange(16), val_labels].mean(), rel=1e-4)
    import keras

    model = keras.saving.load_model(tmp_path / "tutorial.keras")
    # the book's ResNet-83: 27 bottleneck modules of three convolutions, 3 projections, a stem
    convolutions = [layer for layer in model.get_layer("preact_resnet").layers
                    if isinstance(layer, keras.layers.Conv2D)]
    assert len(convolutions) == 27 * 3 + 3 + 1


def test_no_validation_split_means_no_temperature(tiny_cifar, tmp_path):
    """(With TensorBoard logging on, whose event files appear in its folder.)"""
    argv = tiny_argv(tiny_cifar, tmp_path / "p.png", "--epochs", "1", "--tensorboard",
                     str(tmp_path / "tb"))
    argv[argv.index("--val-size") + 1] = "0"
    assert label_smoothing_loss.main(argv) == 0
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["data"]["train_images"] == 160 and result["data"]["val_images"] == 0
    assert result["history"]["val_loss"] == [None] and result["temperature"] is None
    assert result["test_metrics_temperature_scaled"] is None
    events = [name for _, _, names in os.walk(tmp_path / "tb") for name in names]
    assert any(name.startswith("events.out.tfevents") for name in events), events


def test_recipe_flags_override_only_their_entries(tiny_cifar, tmp_path):
    """--weight-decay 0 (the study's long regime without decay) and --lr reach the recipe the
    run compiles with; every other entry stays the recipe's."""
    argv = tiny_argv(tiny_cifar, tmp_path / "p.png", "--epochs", "1", "--recipe", "overfit",
                     "--weight-decay", "0", "--lr", "0.2")
    assert label_smoothing_loss.main(argv) == 0
    recipe = json.loads((tmp_path / "p.json").read_text())["recipe"]
    expected = dict(RECIPES["overfit"], weight_decay=0.0, lr=0.2, epochs=1, batch_size=32)
    assert recipe == expected and RECIPES["overfit"]["weight_decay"] == 9e-3
