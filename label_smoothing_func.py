"""Method 1: smooth the one-hot training labels in advance, then train with plain cross-entropy.

    python label_smoothing_func.py --smoothing 0.1 --plot func.png
"""
import sys

try:
    from pyimagesearch.cli import main as train_main
    from pyimagesearch.smoothing import smooth_labels
    from pyimagesearch.config import Method
except KeyboardInterrupt:  # Ctrl-C while Python loads the package: nothing has started
    sys.exit(130)

__all__ = ["smooth_labels", "prepare", "main"]


def prepare(one_hot, smoothing):
    """Smooth the targets once; the loss sees them as ordinary soft labels."""
    import keras

    return smooth_labels(one_hot, smoothing), keras.losses.CategoricalCrossentropy(from_logits=True)


METHOD = Method(name="func", summary="labels smoothed in advance", prepare=prepare)


def main(argv=None):
    return train_main(METHOD, argv)


if __name__ == "__main__":
    sys.exit(main())
