"""How the training images are split into training and validation (cifar10.split_data)."""
import numpy as np
import pytest

from pyimagesearch.cifar10 import Cifar10, split_data
from pyimagesearch.errors import UsageError


def dataset(train, test):
    return Cifar10(train_images=np.arange(train).reshape(-1, 1, 1, 1),
                   train_labels=np.arange(train) % 10,
                   test_images=np.arange(test).reshape(-1, 1, 1, 1),
                   test_labels=np.arange(test) % 10, source="made up")


def sizes(parts):
    return [len(images) for images, _ in parts]


def test_default_validation_is_a_tenth_up_to_5000_taken_from_the_end():
    assert sizes(split_data(dataset(50_000, 10_000))) == [45_000, 5_000, 10_000]
    (train, _), (val, val_labels), _ = split_data(dataset(1_000, 10))
    assert len(val) == 100 and val[0, 0, 0, 0] == 900 and val_labels[0] == 0
    assert train[-1, 0, 0, 0] == 899  # disjoint, nothing dropped
    assert sizes(split_data(dataset(200_000, 10))) == [195_000, 5_000, 10]


def test_sizes_and_no_validation():
    data = dataset(1_000, 500)
    assert sizes(split_data(data, train_size=300, test_size=50)) == [270, 30, 50]
    assert sizes(split_data(data, train_size=300, val_size=0)) == [300, 0, 500]
    with pytest.raises(UsageError, match="--val-size \\(300\\) must be smaller"):
        split_data(data, train_size=300, val_size=300)
    with pytest.raises(UsageError, match="--train-size 1001: the dataset has only 1000"):
        split_data(data, train_size=1001)
