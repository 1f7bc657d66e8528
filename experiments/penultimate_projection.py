"""Müller et al.'s Figure 1 for saved runs: penultimate activations of three classes' test images
projected onto the plane through those classes' templates, one panel per run.

    python experiments/penultimate_projection.py runs/study/loss_s0_seed1.keras \\
        runs/study/loss_s0.1_seed1.keras --dataset /tmp/cifar10/cifar-10-python.tar.gz \\
        --classes airplane automobile bird --plot runs/study/penultimate.png

Each panel's title is its run's smoothing factor, from the JSON beside the model.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pyimagesearch import penultimate  # noqa: E402
from pyimagesearch.cifar10 import CLASS_NAMES, load_cifar10  # noqa: E402
from pyimagesearch.outputs import save_figure  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="<plot stem>.keras files written by the scripts")
    parser.add_argument("--dataset", required=True, help="cifar-10-python.tar.gz or its folder")
    parser.add_argument("--classes", nargs=3, default=["airplane", "automobile", "bird"],
                        choices=CLASS_NAMES, help="three class names")
    parser.add_argument("--per-class", type=int, default=300, help="test images per class")
    parser.add_argument("--plot", default="penultimate.png")
    args = parser.parse_args(argv)
    data = load_cifar10(args.dataset)
    class_ids = [CLASS_NAMES.index(name) for name in args.classes]
    chosen = np.concatenate([np.flatnonzero(data.test_labels == class_id)[:args.per_class]
                             for class_id in class_ids])
    images, labels = data.test_images[chosen], data.test_labels[chosen]
    figure, axes = plt.subplots(1, len(args.models), figsize=(4.5 * len(args.models), 4.5),
                                squeeze=False)
    for axis, path in zip(axes[0], args.models):
        activations, templates = penultimate.penultimate_activations(
            keras.saving.load_model(path), images)
        points = penultimate.project_onto_template_plane(activations, templates[class_ids])
        for class_id, name in zip(class_ids, args.classes):
            mine = labels == class_id
            axis.scatter(points[mine, 0], points[mine, 1], s=4, alpha=0.5, label=name)
        json_path = os.path.splitext(path)[0] + ".json"
        title = os.path.basename(path)
        if os.path.exists(json_path):
            with open(json_path, encoding="utf-8") as handle:
                title = f"smoothing {json.load(handle)['args']['smoothing']}"
        axis.set_title(title)
        axis.set_aspect("equal", adjustable="datalim")
        axis.legend(markerscale=3)
    figure.suptitle("penultimate activations on the plane of three class templates")
    save_figure(figure, args.plot)
    print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
