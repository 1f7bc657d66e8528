"""Check the outputs of CI's one-epoch runs: every file there, sane values, and the two methods
bit-identical (same seed, same batches, the same smoothed targets made in different places)."""
import json
import os
import sys


def fail(message):
    sys.exit(f"check_outputs: {message}")


def check_run(plot):
    stem = os.path.splitext(plot)[0]
    for path in (plot, f"{stem}_report.txt", f"{stem}.json", f"{stem}_calibration.png",
                 f"{stem}.keras", f"{stem}_history.csv"):
        if not os.path.exists(path) or not os.path.getsize(path):
            fail(f"{path}: missing or empty")
    for leftover in (f"{stem}_backup", f"{stem}.lock"):
        if os.path.exists(leftover):
            fail(f"{leftover}: left behind after a clean finish")
    with open(f"{stem}.json", encoding="utf-8") as handle:
        result = json.load(handle)
    data = result["data"]
    if (data["train_images"] + data["val_images"], data["test_images"]) != (2000, 1000):
        fail(f"{plot}: data {data}")
    if result["epochs_completed"] != 1 or result["diverged"]:
        fail(f"{plot}: {result['epochs_completed']} epochs, diverged {result['diverged']}")
    if result["args"]["smoothing"] != 0.1 or result["method"] != os.path.basename(stem):
        fail(f"{plot}: smoothing {result['args']['smoothing']}, method {result['method']}")
    # one epoch on 1,800 images: better than the 10% of chance, far from done
    if not 0.15 < result["test_accuracy"] < 0.9:
        fail(f"{plot}: test accuracy {result['test_accuracy']}")
    print(f"{plot}: ok, test accuracy {result['test_accuracy']:.4f}, "
          f"{result['wall_seconds']:.0f} s ({result['phases']}), {result['backend']}, "
          f"{result['precision']}")
    return result


func, loss = (check_run(plot) for plot in sys.argv[1:3])
for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
    if func["history"][key] != loss["history"][key]:
        fail(f"methods differ in history {key}: {func['history'][key]} vs {loss['history'][key]}")
if func["test_metrics"] != loss["test_metrics"]:
    fail(f"methods differ in test metrics: {func['test_metrics']} vs {loss['test_metrics']}")
print(f"methods bit-identical: history and test metrics equal (test accuracy "
      f"{func['test_accuracy']:.4f})")
