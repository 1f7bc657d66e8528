"""A CIFAR-10 loader that reads the official python layout safely.

The official `cifar-10-python.tar.gz` holds pickled batches, and unpickling can run arbitrary
code. So batches are read with an unpickler that only rebuilds numpy arrays, archive members are
read in memory (nothing is ever extracted to disk), and members with absolute paths, `..`, links
or device files are refused. Every fault becomes a `DatasetError` whose message names the file.
"""
import dataclasses
import io
import math
import os
import pickle
import struct
import tarfile
import zlib

import numpy as np

from pyimagesearch.errors import DatasetError, UsageError

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (32, 32, 3)
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"
DEFAULT_VAL_SIZE = 5000  # training images held out for validation and temperature scaling

# Byte orders and number types an array in a batch may have: plain numbers only. numpy's own
# unpickling of an array of Python objects trusts the file's item count (numpy 2.4 reads past
# a short list and crashes), so objects never become arrays here.
_BYTE_ORDERS = ("<", ">", "=", "|")
_NUMBER_TYPES = frozenset({f"{kind}{size}" for kind in "iu" for size in (1, 2, 4, 8)}
                          | {"f2", "f4", "f8"})


@dataclasses.dataclass
class Cifar10:
    """Images are uint8 (N, 32, 32, 3); labels are int64 class indices (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str


class _PickledDtype:
    """A `numpy.dtype(...)` call in a pickle, and the byte order BUILD then sets; only the plain
    number types are made. `__slots__`: BUILD can set nothing else on it."""

    __slots__ = ("dtype",)

    def __init__(self, spec):
        name = spec.decode("latin-1") if isinstance(spec, bytes) else spec
        if name not in _NUMBER_TYPES:
            raise pickle.UnpicklingError(f"refused dtype {spec!r} (plain numbers only)")
        self.dtype = np.dtype(name)

    def __setstate__(self, state):
        # numpy's dtype state: (version, byte order, subarray, names, fields, item size,
        # alignment, flags); a plain number type has a byte order and none of the next three
        order = state[1] if isinstance(state, tuple) and len(state) > 4 else None
        order = order.decode("latin-1") if isinstance(order, bytes) else order
        if order not in _BYTE_ORDERS or any(part is not None for part in state[2:5]):
            raise pickle.UnpicklingError("dtype state is not a plain number type's")
        self.dtype = self.dtype.newbyteorder(order)


class _PickledArray:
    """The empty array `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` makes, which
    BUILD then fills from (version, shape, dtype, Fortran order, raw bytes): here an array is
    made only from bytes of exactly the size the shape and a plain number type need, so the
    file cannot make numpy allocate for a shape it does not hold."""

    __slots__ = ("array",)

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("array state is not numpy's 5-tuple")
        _, shape, dtype, fortran_order, raw = state
        if not (isinstance(shape, tuple)
                and all(type(size) is int and size >= 0 for size in shape)):
            raise pickle.UnpicklingError(f"array shape is not a tuple of sizes: {shape!r:.60}")
        if not isinstance(dtype, _PickledDtype):
            raise pickle.UnpicklingError("array dtype is not a numpy.dtype")
        if not isinstance(raw, bytes) or len(raw) != math.prod(shape) * dtype.dtype.itemsize:
            raise pickle.UnpicklingError(f"array of shape {shape} and {dtype.dtype} needs "
                                         f"{math.prod(shape) * dtype.dtype.itemsize} bytes, "
                                         f"found {len(raw) if isinstance(raw, bytes) else raw!r:.60}")
        self.array = np.frombuffer(raw, dtype.dtype).reshape(shape,
                                                             order="F" if fortran_order else "C")


class _Global:
    """What a pickle's allowed global stands for: a callable with `__slots__ = ()`, so that
    BUILD cannot change it for the next file."""

    __slots__ = ()


class _Reconstruct(_Global):
    __slots__ = ()

    def __call__(self, subtype, shape, typecode):
        if subtype is not _NDARRAY:
            raise pickle.UnpicklingError("_reconstruct of something other than numpy.ndarray")
        return _PickledArray()


class _Dtype(_Global):
    __slots__ = ()

    def __call__(self, spec, align=False, copy=True):
        return _PickledDtype(spec)


class _Encode(_Global):
    """`_codecs.encode(text, 'latin1')`: how Python 3 writes bytes at protocol 2."""

    __slots__ = ()

    def __call__(self, text, encoding="latin1"):
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise pickle.UnpicklingError(f"refused _codecs.encode to {encoding!r:.20}")
        return text.encode("latin-1")


_NDARRAY = _Global()  # numpy.ndarray: only ever _reconstruct's first argument

# The only globals a CIFAR-10 batch pickle needs, and what each stands for here: numpy's array
# reconstruction (module renamed in numpy 2), the dtype, the ndarray class, and
# `_codecs.encode`, with which Python 3 writes bytes at pickle protocol 2. Anything else
# (os.system, eval, ...) is refused, and none of these is numpy's or Python's own.
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"): _Encode(),
    ("numpy.core.multiarray", "_reconstruct"): _Reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _Reconstruct(),
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Dtype(),
}


MAX_ENTRIES = 1000  # dict and set entries in one pickle: a batch's dict has four or five


def _counting(load, added):
    """An opcode that adds `added(stack)` entries to a dict or set, refused past MAX_ENTRIES in
    all: integer keys chosen to share a hash make each insertion scan all the others, so a few
    MB of them would take hours."""
    def counted(self):
        self.entries += added(self.stack)
        if self.entries > MAX_ENTRIES:
            raise pickle.UnpicklingError(f"more than {MAX_ENTRIES} dict or set entries "
                                         "(a batch has a few)")
        load(self)
    return counted


def _refuse_bytearray8(self):
    raise pickle.UnpicklingError("refused BYTEARRAY8 (protocol 5, not a batch's)")


def _restricted_dispatch():
    """Python's unpickler's opcode table, with dicts and sets counted and BYTEARRAY8 refused:
    protocol 5's BYTEARRAY8, which no batch holds, allocates and clears the size the file names
    before reading it."""
    dispatch = dict(pickle._Unpickler.dispatch)
    for opcode, added in ((pickle.DICT, lambda stack: len(stack) // 2),
                          (pickle.SETITEM, lambda stack: 1),
                          (pickle.SETITEMS, lambda stack: len(stack) // 2),
                          (pickle.ADDITEMS, len), (pickle.FROZENSET, len)):
        dispatch[opcode[0]] = _counting(dispatch[opcode[0]], added)
    dispatch[pickle.BYTEARRAY8[0]] = _refuse_bytearray8
    return dispatch


class _RestrictedUnpickler(pickle._Unpickler):
    """Python's own unpickler, written in Python: its memo is a dict, where the C unpickler's is
    a table as long as the largest index the file names (nine bytes could make it allocate and
    clear gigabytes)."""

    dispatch = _restricted_dispatch()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entries = 0

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        raise pickle.UnpicklingError(f"refused to load global '{module}.{name}'")


def _unwrap(value):
    """A batch value as numpy or Python holds it: the array a _PickledArray was filled with."""
    if isinstance(value, _PickledArray):
        return getattr(value, "array", None)  # None: BUILD never filled it
    return value


def unpickle_batch(payload, where):
    """Decode one batch pickle (bytes) into (images, labels), checking the format strictly."""
    try:
        batch = _RestrictedUnpickler(io.BytesIO(payload), encoding="bytes").load()
    except pickle.UnpicklingError as error:
        raise DatasetError(f"{where}: unsafe or corrupt pickle ({error})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, struct.error,
            OverflowError, RecursionError, MemoryError) as error:
        raise DatasetError(f"{where}: truncated or corrupt pickle ({type(error).__name__}: "
                           f"{error})") from None
    if not isinstance(batch, dict):
        raise DatasetError(f"{where}: expected a dict, found {type(batch).__name__}")
    # Official batches were pickled by Python 2, so their keys read back as bytes; latin-1 reads
    # any bytes, so a damaged key is just another key.
    batch = {key.decode("latin-1") if isinstance(key, bytes) else key: value
             for key, value in batch.items()}
    if "data" not in batch or "labels" not in batch:
        keys = sorted(key for key in batch if isinstance(key, str))
        raise DatasetError(f"{where}: missing 'data' or 'labels' (keys: {keys[:10]}"
                           f"{' ...' if len(keys) > 10 else ''})")
    data, labels = _unwrap(batch["data"]), _unwrap(batch["labels"])
    row_size = int(np.prod(IMAGE_SHAPE))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != row_size:
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise DatasetError(f"{where}: 'data' must be uint8 of shape (N, {row_size}), "
                           f"found {dtype} {shape}")
    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError, OverflowError, RecursionError):  # ragged lists, mostly
        raise DatasetError(f"{where}: 'labels' must be integers, found a ragged or nested "
                           "list") from None
    if labels.size and labels.dtype.kind not in "iu":
        raise DatasetError(f"{where}: 'labels' must be integers, found {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.shape != (len(data),):
        raise DatasetError(f"{where}: {len(data)} images but labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DatasetError(f"{where}: labels must be in 0-{NUM_CLASSES - 1}, "
                           f"found {labels.min()}-{labels.max()}")
    # Rows are channel-major (1024 red, 1024 green, 1024 blue): to (N, 32, 32, 3).
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def write_random_folder(root, images_per_batch=40, seed=0):
    """Write root/cifar-10-batches-py/ in the official layout (five training batches and a test
    batch, protocol-4 pickles) of random images whose labels cycle through the ten classes: a
    stand-in dataset for tests and benchmarks. Returns the folder's path."""
    folder = os.path.join(root, FOLDER_NAME)
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in TRAIN_BATCHES + (TEST_BATCH,):
        batch = {b"batch_label": name.encode(),
                 b"data": rng.integers(0, 256, (images_per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(label) for label in np.arange(images_per_batch) % NUM_CLASSES],
                 b"filenames": [f"{name}_{index}.png".encode()
                                for index in range(images_per_batch)]}
        with open(os.path.join(folder, name), "wb") as handle:
            pickle.dump(batch, handle, protocol=4)
    return folder


def _check_member(member, archive):
    parts = member.name.replace("\\", "/").split("/")
    if member.name.startswith(("/", "\\")) or ".." in parts:
        raise DatasetError(f"{archive}: refused member '{member.name}' (path leaves the archive)")
    if not (member.isfile() or member.isdir()):
        raise DatasetError(f"{archive}: refused member '{member.name}' (link or device file)")


def _read_archive(path):
    """Read the batch files of a .tar.gz into memory: {batch name: bytes}."""
    if os.path.getsize(path) == 0:
        raise DatasetError(f"{path}: empty file, not a tar.gz archive")
    wanted = set(TRAIN_BATCHES) | {TEST_BATCH}
    payloads = {}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                _check_member(member, path)
                folder, _, name = member.name.rpartition("/")
                if member.isfile() and name in wanted and folder.split("/")[-1] == FOLDER_NAME:
                    payloads[name] = archive.extractfile(member).read()
            # Read to the end of the compressed stream, where gzip (bz2, xz) keeps its checksum:
            # a damaged byte in stored (incompressible) pixels decompresses without complaint.
            while archive.fileobj.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise DatasetError(f"{path}: truncated or corrupt archive ({error})") from None
    return payloads


def _find_folder(path):
    for candidate in (path, os.path.join(path, FOLDER_NAME)):
        if os.path.isfile(os.path.join(candidate, TEST_BATCH)):
            return candidate
    raise DatasetError(f"{path}: no '{TEST_BATCH}' here or in {FOLDER_NAME}/: "
                       "not a CIFAR-10 python folder")


def _read_folder(path):
    folder = _find_folder(path)
    payloads = {}
    for name in TRAIN_BATCHES + (TEST_BATCH,):
        file_path = os.path.join(folder, name)
        if os.path.islink(file_path) or not os.path.isfile(file_path):
            continue
        with open(file_path, "rb") as handle:
            payloads[name] = handle.read()
    return folder, payloads


def load_cifar10(path=None):
    """Load CIFAR-10 from the official .tar.gz, its extracted folder, or (path None) Keras' cache.

    Raises `DatasetError` for a missing, truncated, wrong-shape or unsafe dataset.
    """
    if path is None:
        return _load_from_keras()
    if not os.path.exists(path):
        raise DatasetError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        where, payloads = _read_folder(path)
    else:
        where, payloads = path, _read_archive(path)
    missing = [name for name in TRAIN_BATCHES + (TEST_BATCH,) if name not in payloads]
    if missing:
        raise DatasetError(f"{where}: missing {', '.join(missing)}")
    train = [unpickle_batch(payloads[name], os.path.join(where, name)) for name in TRAIN_BATCHES]
    test_images, test_labels = unpickle_batch(payloads[TEST_BATCH], os.path.join(where, TEST_BATCH))
    return Cifar10(train_images=np.concatenate([images for images, _ in train]),
                   train_labels=np.concatenate([labels for _, labels in train]),
                   test_images=test_images, test_labels=test_labels, source=os.path.abspath(path))


def _load_from_keras():
    import keras  # deferred: keeps the loader importable without TensorFlow

    try:
        (train_images, train_labels), (test_images, test_labels) = \
            keras.datasets.cifar10.load_data()
    except Exception as error:  # the download has many failure modes; all mean "no data"
        raise DatasetError(f"keras.datasets.cifar10: could not load or download ({error}); "
                           "pass --dataset PATH to a local cifar-10-python.tar.gz") from None
    return Cifar10(train_images, train_labels.reshape(-1).astype(np.int64),
                   test_images, test_labels.reshape(-1).astype(np.int64),
                   source="keras.datasets.cifar10")


def check_sizes(train_size=None, val_size=None, test_size=None, available_train=None,
                available_test=None):
    """The one check of the split's sizes, a `UsageError` for the first bad one: before the data
    is loaded (the `available_*` counts None) with what the flags alone decide, and again by
    `split_data` against the images there are."""
    for flag, size in (("--train-size", train_size), ("--test-size", test_size)):
        if size is not None and size <= 0:
            raise UsageError(f"{flag} must be positive, got {size}")
    if val_size is not None and val_size < 0:
        raise UsageError(f"--val-size must be >= 0, got {val_size}")
    for flag, size, available in (("--train-size", train_size, available_train),
                                  ("--test-size", test_size, available_test)):
        if size is not None and available is not None and size > available:
            raise UsageError(f"{flag} {size}: the dataset has only {available} images")
    if train_size is not None and val_size is not None and val_size >= train_size:
        raise UsageError(f"--val-size ({val_size}) must be smaller than --train-size "
                         f"({train_size})")
    if available_train is not None and val_size is not None \
            and val_size >= (train_size or available_train):
        raise UsageError(f"--val-size ({val_size}) must be smaller than the "
                         f"{train_size or available_train} training images")


def split_data(data, train_size=None, test_size=None, val_size=None):
    """(train, val, test) as (images, labels) pairs: the first `train_size` training images, of
    which the last `val_size` (default min(5000, a tenth)) are held out for validation; the first
    `test_size` test images. Sizes the data cannot supply are a `UsageError`."""
    check_sizes(train_size, val_size, test_size, len(data.train_images), len(data.test_images))
    train_images, train_labels = data.train_images[:train_size], data.train_labels[:train_size]
    if val_size is None:
        val_size = min(DEFAULT_VAL_SIZE, len(train_images) // 10)
    cut = len(train_images) - val_size
    return ((train_images[:cut], train_labels[:cut]),
            (train_images[cut:], train_labels[cut:]),
            (data.test_images[:test_size], data.test_labels[:test_size]))
