"""Method 2: keep one-hot training labels and let the loss smooth them.

    python label_smoothing_loss.py --smoothing 0.1 --plot loss.png
"""
import sys

try:
    from pyimagesearch.cli import main as train_main
    from pyimagesearch.config import Method
except KeyboardInterrupt:  # Ctrl-C while Python loads the package: nothing has started
    sys.exit(130)

__all__ = ["prepare", "main"]


def prepare(one_hot, smoothing):
    """One-hot targets; `CategoricalCrossentropy(label_smoothing=...)` smooths inside the loss."""
    import keras

    return one_hot, keras.losses.CategoricalCrossentropy(from_logits=True,
                                                         label_smoothing=smoothing)


METHOD = Method(name="loss", summary="smoothing inside CategoricalCrossentropy", prepare=prepare)


def main(argv=None):
    return train_main(METHOD, argv)


if __name__ == "__main__":
    sys.exit(main())
