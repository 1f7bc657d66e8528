"""Label smoothing of one-hot targets (Szegedy et al. 2016, "Rethinking the Inception Architecture")."""
import numpy as np


def smooth_labels(labels, factor=0.1):
    """Return one-hot `labels` (N, num_classes) smoothed towards the uniform distribution.

    Each row becomes `labels * (1 - factor) + factor / num_classes`: the true class keeps
    `1 - factor + factor / num_classes`, every other class gets `factor / num_classes`, and the row
    still sums to one. The input is never modified; integer arrays are accepted. This is the exact
    formula `keras.losses.CategoricalCrossentropy(label_smoothing=factor)` applies inside the loss.
    """
    factor = float(factor)
    if not 0.0 <= factor < 1.0:
        raise ValueError(f"smoothing factor must be in [0, 1), got {factor}")
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D one-hot (N, num_classes), got shape {labels.shape}")
    num_classes = labels.shape[1]
    return labels.astype(np.float32) * (1.0 - factor) + factor / num_classes
