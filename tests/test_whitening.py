import numpy as np

from pyimagesearch.whitening import image_patches, patch_whitening_kernel


def test_image_patches_hand_worked():
    image = np.arange(3 * 3 * 1, dtype=float).reshape(1, 3, 3, 1)  # [[0,1,2],[3,4,5],[6,7,8]]
    patches = image_patches(image, 2)
    np.testing.assert_array_equal(patches, [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7],
                                            [4, 5, 7, 8]])


def test_kernel_whitens_correlated_patches():
    rng = np.random.default_rng(0)
    # strongly correlated channels and neighbouring pixels: a smooth colour image
    base = rng.normal(size=(200, 9, 9, 1))
    smooth = (base[:, :-1, :-1] + base[:, 1:, :-1] + base[:, :-1, 1:] + base[:, 1:, 1:]) / 2
    images = np.concatenate([smooth, 0.8 * smooth + 0.2 * rng.normal(size=smooth.shape),
                             rng.normal(size=smooth.shape)], axis=-1)
    kernel = patch_whitening_kernel(images, size=2, eps=0.0)
    assert kernel.shape == (2, 2, 3, 24)
    np.testing.assert_array_equal(kernel[..., 12:], -kernel[..., :12])
    # the conv output of each patch is patches @ filters: its covariance must be the identity
    patches = image_patches(images, 2)
    outputs = patches @ kernel[..., :12].reshape(12, 12).astype(np.float64)
    covariance = outputs.T @ outputs / len(outputs)
    np.testing.assert_allclose(covariance, np.eye(12), atol=2e-3)
    raw = patches.T @ patches / len(patches)
    assert np.abs(raw - np.diag(np.diag(raw))).max() > 0.5  # the input really was correlated
