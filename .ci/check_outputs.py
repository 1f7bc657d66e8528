"""Check the outputs of CI's one-epoch runs: every file there, sane values, methods as asked."""
import json
import os
import sys

for plot in sys.argv[1:]:
    stem = os.path.splitext(plot)[0]
    for path in (plot, f"{stem}_report.txt", f"{stem}.json", f"{stem}_calibration.png",
                 f"{stem}.keras"):
        if not os.path.getsize(path):
            sys.exit(f"{path}: empty")
    if os.path.exists(f"{stem}_backup"):
        sys.exit(f"{stem}_backup: left behind after a clean finish")
    result = json.load(open(f"{stem}.json"))
    assert result["data"]["train_images"] + result["data"]["val_images"] == 2000, result["data"]
    assert result["data"]["test_images"] == 1000, result["data"]
    assert result["epochs_completed"] == 1 and not result["diverged"]
    assert len(result["history"]["val_accuracy"]) == 1
    assert result["args"]["smoothing"] == 0.1
    assert result["method"] == os.path.basename(stem)
    # one epoch on 1,800 images: better than the 10% of chance, far from done
    assert 0.15 < result["test_accuracy"] < 0.9, result["test_accuracy"]
    print(f"{plot}: ok, test accuracy {result['test_accuracy']:.4f}, "
          f"{result['wall_seconds']:.0f} s, precision {result['precision']}")

# Same seed, same data, same objective: the two methods must end (nearly) in the same place.
accuracies = [json.load(open(os.path.splitext(plot)[0] + ".json"))["test_accuracy"]
              for plot in sys.argv[1:]]
assert max(accuracies) - min(accuracies) < 0.02, accuracies
print(f"methods agree: test accuracies {accuracies}")
