"""Label smoothing on CIFAR-10 with Keras 3: the shared package behind the two training scripts.

Modules: `smoothing` (the label-smoothing formula), `cifar10` (a safe CIFAR-10 loader),
`pipeline` (batched tf.data augmentation), `resnet` (the models), `schedule` (learning rates),
`calibration` (NLL, ECE, Brier, temperature scaling), `outputs` (report, plot, JSON) and
`training` (the core both scripts call). Nothing heavy is imported here.
"""
from pyimagesearch.smoothing import smooth_labels

__all__ = ["smooth_labels"]
