"""Patch-whitening initialisation of a network's first convolution (as in Keller Jordan's airbench).

The 2x2 stem convolution is set to the ZCA-style whitening of 2x2x3 image patches (each filter an
eigenvector of the patch covariance, divided by the square root of its eigenvalue), with each
filter also negated, and then frozen. The first layer's outputs are then decorrelated and of unit
variance from step one, which lets a short high-learning-rate schedule learn faster.
"""
import numpy as np


def image_patches(images, size):
    """All size x size patches of images (N, H, W, C), flattened in (row, column, channel) order:
    (N * (H - size + 1) * (W - size + 1), size * size * C)."""
    count, height, width, channels = images.shape
    rows, cols = height - size + 1, width - size + 1
    patches = np.empty((count, rows, cols, size, size, channels), images.dtype)
    for dy in range(size):
        for dx in range(size):
            patches[:, :, :, dy, dx, :] = images[:, dy:dy + rows, dx:dx + cols, :]
    return patches.reshape(-1, size * size * channels)


def patch_whitening_kernel(images, size=2, eps=5e-4):
    """A Conv2D kernel (size, size, C, 2 * size * size * C) whose first half whitens the patches of
    `images` (float, already normalised) and whose second half is its negation."""
    patches = image_patches(np.asarray(images, np.float64), size)
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending
    order = np.argsort(eigenvalues)[::-1]
    filters = eigenvectors[:, order] / np.sqrt(eigenvalues[order] + eps)  # (features, filters)
    kernel = filters.reshape(size, size, images.shape[-1], -1)
    return np.concatenate([kernel, -kernel], axis=-1).astype(np.float32)
