"""Müller et al.'s Figure 1 for saved runs: penultimate activations of three classes' images
projected onto the plane through those classes' templates, one column per run; training images
(among the first 5,000, which every run of the study trained on) above, test images below.

    python experiments/penultimate_projection.py runs/study/long/loss_s0_seed42.keras \\
        runs/study/long/loss_s0.1_seed42.keras --dataset cifar-10-python.tar.gz \\
        --classes airplane automobile bird --plot results/study/penultimate.png

Each column's title is its run's recipe and smoothing factor, from the JSON beside the model.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from pyimagesearch import figures, penultimate  # noqa: E402
from pyimagesearch.cifar10 import CLASS_NAMES, load_cifar10  # noqa: E402


TRAINED_ON_BY_EVERY_RUN = 5000  # the first training images: in the training split of both regimes


def pick(images, labels, class_ids, per_class):
    """The first `per_class` images of each class in `class_ids`, class by class."""
    chosen = np.concatenate([np.flatnonzero(labels == class_id)[:per_class]
                             for class_id in class_ids])
    return images[chosen], labels[chosen]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="<plot stem>.keras files written by the scripts")
    parser.add_argument("--dataset", required=True, help="cifar-10-python.tar.gz or its folder")
    parser.add_argument("--classes", nargs=3, default=["airplane", "automobile", "bird"],
                        choices=CLASS_NAMES, help="three class names")
    parser.add_argument("--per-class", type=int, default=300, help="images per class and row")
    parser.add_argument("--plot", default="penultimate.png")
    args = parser.parse_args(argv)
    data = load_cifar10(args.dataset)
    class_ids = [CLASS_NAMES.index(name) for name in args.classes]
    rows = (("training images", pick(data.train_images[:TRAINED_ON_BY_EVERY_RUN],
                                     data.train_labels[:TRAINED_ON_BY_EVERY_RUN], class_ids,
                                     args.per_class)),
            ("test images", pick(data.test_images, data.test_labels, class_ids,
                                 args.per_class)))
    panels = [[] for _ in rows]
    for path in args.models:
        model = keras.saving.load_model(path)
        title = os.path.basename(path)
        json_path = os.path.splitext(path)[0] + ".json"
        if os.path.exists(json_path):
            with open(json_path, encoding="utf-8") as handle:
                run = json.load(handle)
            title = f"recipe {run['args']['recipe']}, α = {run['args']['smoothing']:g}"
        for row, (row_name, (images, labels)) in enumerate(rows):
            activations, templates = penultimate.penultimate_activations(model, images)
            points = penultimate.project_onto_template_plane(activations, templates[class_ids])
            positions = np.array([class_ids.index(label) for label in labels])  # in args.classes
            panels[row].append({"title": f"{title}\n{row_name}", "points": points,
                                "labels": positions})
    figures.plot_penultimate(args.plot, panels, args.classes)
    print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
