"""The training set in whole batches: padded once to a multiple of the batch size.

With `len % batch_size` left over, every epoch would end on a smaller batch, a second shape of
the training step that the backend compiles as a second program. Instead the set is padded with
copies of a few of its own images, drawn once from the seed (fewer than a batch: at most 511 of
45,000 for the default recipe); Keras then shuffles the padded set each epoch, every image is
seen in every epoch, and every step has one shape. (Dropping each epoch's last partial batch, as
airbench does, needs an input pipeline of its own; Keras' TensorFlow distribution reads a
Python data source differently from a plain run, so the arrays stay plain arrays.)
"""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class WholeBatches:
    """A training set whose length is a multiple of `batch_size`."""

    images: np.ndarray
    targets: np.ndarray
    batch_size: int

    @property
    def steps(self):
        """Optimizer steps in an epoch."""
        return len(self.images) // self.batch_size


def padding_size(num_examples, batch_size):
    """How many copies make `num_examples` a whole number of batches."""
    return -num_examples % batch_size


def pad_to_whole_batches(images, targets, batch_size, seed):
    """WholeBatches of `images` and `targets` with `padding_size` examples, chosen at random
    without repetition by `seed`, appended again. A ValueError if there is not one whole batch."""
    if len(images) < batch_size:
        raise ValueError(f"{len(images)} training images make no whole batch of {batch_size}")
    extra = padding_size(len(images), batch_size)
    chosen = np.random.default_rng(seed).choice(len(images), size=extra, replace=False)
    return WholeBatches(np.concatenate([images, images[chosen]]),
                        np.concatenate([targets, targets[chosen]]), batch_size)
