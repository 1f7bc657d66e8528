"""Training as one job of several processes, on one machine or several (JAX only, through
`keras.distribution.initialize`).

Every process loads the same data and builds the same model from the same seed; each trains on
its own shard of the training images with its share of the global batch, and Keras averages the
gradients over all devices of all processes. Every process validates and evaluates on its own
copy of the weights (`LocalMirror`), so all reach the same numbers; only process 0 (the chief)
writes outputs and backups. To resume, every process must see the chief's backup folder: one
machine, or a shared file system.
"""
import dataclasses

import keras

from pyimagesearch import hardware


@dataclasses.dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the job: `index` in 0 .. `count` - 1."""

    index: int = 0
    count: int = 1

    @property
    def chief(self):
        return self.index == 0

    @property
    def several(self):
        return self.count > 1


def join(coordinator, num_processes, process_id):
    """The ProcessGroup of a run; with several processes, joins the job first."""
    if num_processes > 1:
        hardware.start_processes(coordinator, num_processes, process_id)
    return ProcessGroup(process_id, num_processes)


def shard(array, group):
    """This process's training examples: every `count`-th from `index`, the same number in every
    process (the last len % count examples are left out), so that all take the same steps."""
    return array[group.index::group.count][:len(array) // group.count]


class LocalMirror:
    """A copy of `model` outside the distribution, on this process's devices. Predicting with a
    model trained across processes gives arrays spread over every process's devices, which no
    process can read (JAX: "spans non-addressable devices"); the weights themselves are
    replicated, so each process holds them whole and can copy them here."""

    def __init__(self, model):
        self.source = model
        with hardware.no_distribution():
            self.model = keras.models.clone_model(model)

    def refreshed(self):
        """The copy, with the source's current weights."""
        self.model.set_weights(self.source.get_weights())
        return self.model

    def predict(self, images, batch_size=None, verbose=0):
        """`Model.predict` with the current weights; stands in for the source model."""
        with hardware.no_distribution():
            return self.refreshed().predict(images, batch_size=batch_size, verbose=verbose)


def check_resume_agrees(group, epochs_done):
    """With several processes, every one must resume from the same epoch (-1: none)."""
    if group.several:
        hardware.check_same_in_every_process(
            epochs_done, "the processes found different backups to resume from; every process "
            "must see the chief's output folder (one machine or a shared file system)")
