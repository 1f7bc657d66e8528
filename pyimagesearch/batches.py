"""The training set in whole batches, padded once to a multiple of the batch size, and each
epoch's order of them.

With `len % batch_size` left over, every epoch would end on a smaller batch, a second shape of
the training step that the backend compiles as a second program. Instead the set is padded with
copies of a few of its own images, drawn once from the seed (fewer than a batch: at most 511 of
45,000 for the default recipe); every image is seen in every epoch, and every step has one shape.

Each epoch's order is a pure function of the seed and the epoch's number (`epoch_order`), not of a
random generator's state: Keras' own shuffling draws from a stateful generator (TensorFlow's
`tf.random.shuffle`, numpy's global state under JAX) that a resumed run would restart at its
first permutation. `WholeBatches.stream(first_epoch)` yields the batches from any epoch on, so a
run resumed after epoch k trains on exactly the batches the uninterrupted run trained on.
"""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class WholeBatches:
    """A training set whose length is a multiple of `batch_size`."""

    images: np.ndarray
    targets: np.ndarray
    batch_size: int
    seed: int = 0

    @property
    def steps(self):
        """Optimizer steps in an epoch."""
        return len(self.images) // self.batch_size

    def stream(self, first_epoch, epochs):
        """(images, targets) batches of epochs `first_epoch` .. `epochs - 1` (0-based), one after
        another, each epoch in its `epoch_order`: the data of `model.fit(stream,
        steps_per_epoch=self.steps, ...)`."""
        for epoch in range(first_epoch, epochs):
            order = epoch_order(len(self.images), self.seed, epoch)
            for step in range(self.steps):
                chosen = order[step * self.batch_size:(step + 1) * self.batch_size]
                yield self.images[chosen], self.targets[chosen]

    def laid_out(self, first_epoch, epochs):
        """`stream(first_epoch, epochs)` as two arrays, its batches one after another (a copy
        of the training set for each epoch)."""
        order = np.concatenate([epoch_order(len(self.images), self.seed, epoch)
                                for epoch in range(first_epoch, epochs)])
        return self.images[order], self.targets[order]


def epoch_order(num_examples, seed, epoch):
    """The permutation of `num_examples` that epoch `epoch` (0-based) of a run seeded `seed`
    trains in: its own random stream, independent of every other epoch's."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


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
                        np.concatenate([targets, targets[chosen]]), batch_size, seed)
