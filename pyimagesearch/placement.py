"""Where a run executes, behind one object: the devices, data parallelism, several processes,
each process's shard of the training images, the local copy that predicts, which process writes,
and tearing the distribution down. `run()` reads the same for one CPU and a multi-process job.
"""
import contextlib
import dataclasses

import keras
from keras import layers

from pyimagesearch import hardware, processes
from pyimagesearch.errors import UsageError


@dataclasses.dataclass
class Placement:
    """`group`: this process's place in the job; `device_names`: Keras' names of the devices
    that train; `parallel`: through Keras' distribution (several devices, or `--data-parallel
    on`)."""

    group: processes.ProcessGroup
    device_names: list
    parallel: bool

    @classmethod
    def start(cls, config):
        """Join the job (several processes), choose the devices and check that the batch splits
        evenly between them. UsageError for what this machine or backend cannot do."""
        try:
            group = processes.join(config.coordinator, config.num_processes, config.process_id)
        except ValueError as error:
            raise UsageError(f"--num-processes {config.num_processes}: {error}") from None
        try:
            device_names = choose_devices(config.data_parallel, group.several)
        except ValueError as error:
            raise UsageError(f"--data-parallel {config.data_parallel}: {error}") from None
        # 'on' uses Keras' distribution even on one device: the same code path as on several
        parallel = len(device_names) > 1 or config.data_parallel == "on"
        batch_size = config.recipe["batch_size"]
        if parallel and batch_size % len(device_names):
            raise UsageError(f"--batch-size {batch_size} must divide evenly between the "
                             f"{len(device_names)} devices ({', '.join(device_names)})")
        return cls(group, device_names, parallel)

    @property
    def writes(self):
        """Only the chief writes outputs, backups and progress lines."""
        return self.group.chief

    def check_resume(self, backup_folder, epochs_done):
        """Every process must resume from the same epoch (-1: none) of `backup_folder`."""
        try:
            processes.check_resume_agrees(self.group, epochs_done)
        except ValueError as error:
            raise UsageError(f"{backup_folder}: {error}") from None

    def shard(self, array):
        """This process's share of the training examples (all of them when it is alone)."""
        return processes.shard(array, self.group)

    def shard_batch_size(self, batch_size):
        return batch_size // self.group.count

    def scope(self):
        """The context to build, compile and fit in, so that they run on `device_names`."""
        if not self.parallel:
            return contextlib.nullcontext()
        return hardware.data_parallel(self.device_names)

    def prepare(self, training_model):
        """After compiling: whole-batch batch-norm statistics under TensorFlow's mirroring."""
        if self.parallel and hardware.backend() == "tensorflow":
            synchronize_batch_norms(training_model)

    def fit_data(self, batches, first_epoch, epochs):
        """`model.fit`'s data arguments for the `batches.WholeBatches` of this process: their
        `stream` from `first_epoch` on, each epoch's order fixed by its number, so that a
        resumed run trains on the batches an uninterrupted one would. Resumed after the last
        epoch, Keras trains none but still wants data to look at: the last epoch's."""
        first_epoch = min(first_epoch, epochs - 1)
        if self.parallel and hardware.backend() == "tensorflow":
            # MirroredStrategy splits only batches of a static size, which Keras gives arrays
            # and not a Python iterator: the same order laid out as arrays, epoch after epoch
            images, targets = batches.laid_out(first_epoch, epochs)
            return dict(x=images, y=targets, batch_size=batches.batch_size,
                        steps_per_epoch=batches.steps, shuffle=False)
        return dict(x=batches.stream(first_epoch, epochs), steps_per_epoch=batches.steps,
                    shuffle=False)

    def predictor(self, inference_model):
        """What predicts during training: a model trained across processes cannot be read back,
        a local copy of it can."""
        return processes.LocalMirror(inference_model) if self.group.several else inference_model

    def finish(self, training_model, inference_model, predictor):
        """Tear the distribution down; returns the inference model to evaluate and save."""
        synchronize_batch_norms(training_model, False)  # a TensorFlow-only flag; see its docstring
        if not self.group.several:
            return inference_model
        keras.distribution.set_distribution(None)
        return predictor.refreshed()

    def describe(self):
        """'devices: cpu:0 (CPU: 2 cores, ...)' for the first printed line."""
        details = [hardware.device_summary()]
        if self.parallel:
            details.append("data-parallel")
        if self.group.several:
            details.append(f"process {self.group.index} of {self.group.count}")
        return f"devices: {', '.join(self.device_names)} ({', '.join(details)})"

    def as_json(self):
        return {"devices": self.device_names, "data_parallel": self.parallel,
                "processes": self.group.count, "device": hardware.device_summary()}


def choose_devices(data_parallel, several_processes=False):
    """The devices to train on, by `--data-parallel`: 'off' the first one Keras lists (a GPU
    where there is one), 'on' all of them, 'auto' all GPUs/TPUs when there are several. With
    several processes, every device of every process, unless 'off' (a ValueError)."""
    if several_processes:
        if data_parallel == "off":
            raise ValueError("several processes always train data-parallel")
        return hardware.devices()
    if data_parallel == "on":
        hardware.check_data_parallel_support()
        return hardware.devices()
    accelerators = hardware.accelerators()
    if data_parallel == "auto" and len(accelerators) > 1:
        return accelerators
    return hardware.devices()[:1]


def synchronize_batch_norms(model, synchronized=True):
    """Under TensorFlow's MirroredStrategy each replica normalises its share of the batch by its
    own statistics unless its batch norms are `synchronized`; synchronised, they use the whole
    batch's, as on one device. Set it back to False before saving: the flag is TensorFlow-only,
    and a saved model should load on every backend."""
    for layer in model._flatten_layers():
        if isinstance(layer, layers.BatchNormalization):
            layer.synchronized = synchronized
