"""The training batches: every epoch a fresh order of the training images, cut into whole batches.

Each epoch's last partial batch is dropped, as airbench does: every training step then has one
shape, so the backend compiles one training program instead of two, and the images that sit out
(fewer than a batch) are a different random few each epoch. The order of epoch e depends only on
the seed and e, so a resumed run sees the same batches as an uninterrupted one.
"""
import keras
import numpy as np


def epoch_order(num_examples, seed, epoch):
    """The permutation of `num_examples` that epoch `epoch` (0-based) trains in."""
    return np.random.default_rng((seed, epoch)).permutation(num_examples)


def whole_batches(num_examples, batch_size):
    """Steps in an epoch: the number of whole batches."""
    return num_examples // batch_size


class ShuffledBatches(keras.utils.PyDataset):
    """(images, targets) batches of `batch_size` in the order `epoch_order` gives, starting at
    `first_epoch` (a resumed run's); `fit` must not shuffle them (shuffle=False).

    The epoch is counted from the requests themselves: a request for batch 0 right after one for
    the last batch starts the next epoch. Keras' `on_epoch_end` cannot say it: under TensorFlow
    the next epoch's batches are prefetched before it is called, and a couple are read ahead of
    training to learn the batches' shapes."""

    def __init__(self, images, targets, batch_size, seed, first_epoch=0):
        super().__init__()
        if whole_batches(len(images), batch_size) < 1:
            raise ValueError(f"{len(images)} training images make no whole batch of "
                             f"{batch_size}")
        self.images, self.targets, self.batch_size, self.seed = images, targets, batch_size, seed
        self.epoch, self.last_index = first_epoch, None
        self.order = epoch_order(len(images), seed, first_epoch)

    def __len__(self):
        return whole_batches(len(self.images), self.batch_size)

    def __getitem__(self, index):
        if index == 0 and self.last_index == len(self) - 1:
            self.epoch += 1
            self.order = epoch_order(len(self.images), self.seed, self.epoch)
        self.last_index = index
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.images[chosen], self.targets[chosen]
