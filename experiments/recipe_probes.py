"""The 5-epoch probes that chose the default recipe's settings (docs/recipe.md). Each probe is
the default `fast` recipe with a few entries changed, trained with Method 2 (smoothing 0.1) for
5 epochs, one after another; then the test accuracy of each saved
model under every test-time augmentation is printed and saved as `<out>/probes.md`.

    python experiments/recipe_probes.py cifar-10-python.tar.gz runs/probes [flags]

Extra flags go to every run (e.g. `--train-size 500 --test-size 100` for a smoke test).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import label_smoothing_loss  # noqa: E402
from pyimagesearch import cli, recipes  # noqa: E402

EPOCHS = 5
PROBES = {
    # The previous default with the whitened stem (commit 87b381e's fast_whitened).
    "previous": dict(lr=0.2, momentum=0.9, schedule="warmup_cosine", warmup_fraction=2 / 14,
                     weight_decay=5e-3, bn_momentum=0.9, bn_scale=True, lookahead=False,
                     tta="flip", bn_shift_lr_scale=1.0),
    "no_shift_scale": dict(bn_shift_lr_scale=1.0),
    "no_shift_scale_lr0.4": dict(bn_shift_lr_scale=1.0, lr=0.4),
    "no_shift_scale_wd5e-3": dict(bn_shift_lr_scale=1.0, weight_decay=5e-3),
    "default": {},
}


def tta_accuracies(json_path, data):
    """Test accuracy of a run's saved model under each test-time augmentation."""
    import keras

    from pyimagesearch.augment import TTA_MODES
    from pyimagesearch.evaluation import predict_logits

    with open(json_path, encoding="utf-8") as handle:
        result = json.load(handle)
    model = keras.saving.load_model(os.path.splitext(json_path)[0] + ".keras")
    count = result["data"]["test_images"]
    images, labels = data.test_images[:count], data.test_labels[:count]
    return {mode: float((predict_logits(model, images, mode).argmax(axis=1)
                         == labels).mean()) for mode in TTA_MODES}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    dataset, out, extra = argv[0], argv[1], argv[2:]
    from pyimagesearch.cifar10 import load_cifar10

    data = load_cifar10(dataset)  # for scoring the saved models; each run loads its own
    lines = ["| probe | changed from `fast` | val accuracy by epoch | test: none | flip | "
             "flip_translate |", "| --- | --- | --- | --- | --- | --- |"]
    for name, changes in PROBES.items():
        recipes.RECIPES[f"probe_{name}"] = dict(recipes.RECIPES["fast"], **changes)
        plot = os.path.join(out, f"{name}.png")
        status = cli.main(label_smoothing_loss.METHOD,
                          ["--dataset", dataset, "--recipe", f"probe_{name}", "--epochs",
                           str(EPOCHS), "--smoothing", "0.1", "--plot", plot, *extra])
        if status:
            return status
        json_path = os.path.splitext(plot)[0] + ".json"
        with open(json_path, encoding="utf-8") as handle:
            history = json.load(handle)["history"]["val_accuracy"]
        tta = tta_accuracies(json_path, data)
        lines.append(f"| {name} | {json.dumps(changes) if changes else '(none)'} | "
                     + ", ".join(f"{value:.2%}" for value in history) + " | "
                     + " | ".join(f"{tta[mode]:.2%}" for mode in ("none", "flip",
                                                                   "flip_translate")) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    with open(os.path.join(out, "probes.md"), "w", encoding="utf-8") as handle:
        handle.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
