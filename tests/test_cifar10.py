"""Tests for pyimagesearch.cifar10: the safe CIFAR-10 python-layout loader.

Every dataset here is built by the tests in tmp_path (a few images per batch from a seeded RNG);
expected values are computed from the raw rows with the documented index formula
image[i, y, x, c] == row[c * 1024 + y * 32 + x], independently of the loader's reshape.
"""
import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest

from pyimagesearch.cifar10 import DatasetError, load_cifar10, unpickle_batch

FOLDER = "cifar-10-batches-py"
TRAIN = [f"data_batch_{index}" for index in range(1, 6)]
ALL_BATCHES = TRAIN + ["test_batch"]
PER_BATCH = 4


# ----------------------------------------------------------------------------- helpers

class _Python2StylePickler(pickle._Pickler):
    """Writes bytes the way Python 2 wrote `str` (SHORT_BINSTRING / BINSTRING) at protocol 2,
    as in the official CIFAR-10 files, instead of Python 3's `_codecs.encode` call."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def dumps(batch, protocol):
    """protocol: an int for pickle.dumps, or "py2" for an official-style Python 2 pickle."""
    if protocol != "py2":
        return pickle.dumps(batch, protocol=protocol)
    buffer = io.BytesIO()
    _Python2StylePickler(buffer, protocol=2).dump(batch)
    payload = buffer.getvalue()
    # Official files were written by numpy 1.x under Python 2: the global is numpy.core.
    payload = payload.replace(b"cnumpy._core.multiarray\n_reconstruct\n",
                              b"cnumpy.core.multiarray\n_reconstruct\n")
    assert b"_codecs" not in payload and b"numpy._core" not in payload
    return payload


def make_batches(seed=0, per_batch=PER_BATCH):
    """{name: dict with bytes keys}. Labels differ per batch so concatenation order shows."""
    rng = np.random.default_rng(seed)
    batches = {}
    for number, name in enumerate(ALL_BATCHES):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [(3 * number + index) % 10 for index in range(per_batch)]
        batches[name] = {b"batch_label": f"{name} of 6".encode(),
                         b"data": data,
                         b"labels": labels,
                         b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)]}
    return batches


def meta_payload(protocol=2):
    meta = {b"num_cases_per_batch": PER_BATCH, b"num_vis": 3072,
            b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer",
                             b"dog", b"frog", b"horse", b"ship", b"truck"]}
    return dumps(meta, protocol)


def payloads_of(batches, protocol):
    payloads = {name: dumps(batch, protocol) for name, batch in batches.items()}
    if protocol == "py2":
        assert all(b"cnumpy.core.multiarray\n_reconstruct\n" in payload
                   for payload in payloads.values())
    payloads["batches.meta"] = meta_payload(protocol)
    return payloads


def write_folder(root, payloads):
    folder = os.path.join(str(root), FOLDER)
    os.makedirs(folder, exist_ok=True)
    for name, payload in payloads.items():
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(payload)
    return folder


def _file_info(name, size):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    return info


def write_tar(path, payloads, extra=()):
    """Write a .tar.gz with members cifar-10-batches-py/<name>. `extra` is a list of
    (TarInfo, bytes or None) added after the directory entry and before the batches."""
    with tarfile.open(str(path), "w:gz") as archive:
        directory = tarfile.TarInfo(FOLDER)
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o755
        archive.addfile(directory)
        for info, data in extra:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
        for name, payload in payloads.items():
            archive.addfile(_file_info(f"{FOLDER}/{name}", len(payload)), io.BytesIO(payload))
    return str(path)


def expected_images(data):
    """(N, 32, 32, 3) from (N, 3072) rows by explicit index arithmetic, not reshape."""
    ys, xs, cs = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    flat_index = cs * 1024 + ys * 32 + xs            # (32, 32, 3)
    return data[:, flat_index]                        # fancy indexing: (N, 32, 32, 3)


def assert_pixels_by_hand(images, data):
    """Specific pixels computed by hand from the row formula c*1024 + y*32 + x."""
    for i in range(len(data)):
        row = data[i]
        assert images[i, 0, 0, 0] == row[0]        # red, top-left
        assert images[i, 0, 0, 1] == row[1024]     # green, top-left
        assert images[i, 0, 0, 2] == row[2048]     # blue, top-left
        assert images[i, 0, 1, 0] == row[1]        # red, x=1
        assert images[i, 1, 0, 0] == row[32]       # red, y=1
        assert images[i, 1, 2, 0] == row[34]       # red, y=1 x=2
        assert images[i, 5, 7, 1] == row[1191]     # green: 1024 + 160 + 7
        assert images[i, 31, 0, 2] == row[3040]    # blue: 2048 + 992
        assert images[i, 0, 31, 1] == row[1055]    # green: 1024 + 31
        assert images[i, 31, 31, 2] == row[3071]   # blue, bottom-right (last value)
        assert images[i, 31, 31, 0] == row[1023]   # red, bottom-right


def assert_dataset_matches(dataset, batches):
    n_train = PER_BATCH * len(TRAIN)
    assert dataset.train_images.shape == (n_train, 32, 32, 3)
    assert dataset.test_images.shape == (PER_BATCH, 32, 32, 3)
    assert dataset.train_images.dtype == np.uint8 and dataset.test_images.dtype == np.uint8
    assert dataset.train_labels.shape == (n_train,) and dataset.test_labels.shape == (PER_BATCH,)
    assert dataset.train_labels.dtype == np.int64 and dataset.test_labels.dtype == np.int64

    # Training set is batch 1, 2, 3, 4, 5 in that order.
    for number, name in enumerate(TRAIN):
        block = slice(number * PER_BATCH, (number + 1) * PER_BATCH)
        data = batches[name][b"data"]
        assert_pixels_by_hand(dataset.train_images[block], data)
        np.testing.assert_array_equal(dataset.train_images[block], expected_images(data))
        assert dataset.train_labels[block].tolist() == batches[name][b"labels"]
    # Labels of batch k are (3k + j) % 10, written out literally for the first two batches.
    assert dataset.train_labels[:8].tolist() == [0, 1, 2, 3, 3, 4, 5, 6]
    assert dataset.test_labels.tolist() == [5, 6, 7, 8]  # test batch is number 5: 15..18 % 10

    test_data = batches["test_batch"][b"data"]
    assert_pixels_by_hand(dataset.test_images, test_data)
    np.testing.assert_array_equal(dataset.test_images, expected_images(test_data))


def listing(root):
    """Every path under root, to check that loading writes nothing."""
    found = set()
    for directory, subdirs, files in os.walk(str(root)):
        for name in subdirs + files:
            found.add(os.path.relpath(os.path.join(directory, name), str(root)))
    return found


# ----------------------------------------------------------------------------- loading

@pytest.mark.parametrize("protocol", ["py2", 4])
def test_folder_loads_images_labels_and_order(tmp_path, protocol):
    batches = make_batches(seed=1)
    folder = write_folder(tmp_path, payloads_of(batches, protocol))
    dataset = load_cifar10(folder)
    assert_dataset_matches(dataset, batches)
    assert dataset.source == os.path.abspath(folder)


def test_parent_of_batches_folder_loads(tmp_path):
    batches = make_batches(seed=2)
    write_folder(tmp_path, payloads_of(batches, 4))
    dataset = load_cifar10(str(tmp_path))
    assert_dataset_matches(dataset, batches)
    assert dataset.source == os.path.abspath(str(tmp_path))


@pytest.mark.parametrize("protocol", ["py2", 4])
def test_tar_gz_loads_in_memory_without_extracting(tmp_path, monkeypatch, protocol):
    batches = make_batches(seed=3)
    archive = write_tar(tmp_path / "cifar-10-python.tar.gz", payloads_of(batches, protocol))
    monkeypatch.chdir(tmp_path)
    before = listing(tmp_path)
    dataset = load_cifar10(archive)
    assert listing(tmp_path) == before  # nothing extracted next to the archive or in cwd
    assert_dataset_matches(dataset, batches)
    assert dataset.source == os.path.abspath(archive)


def test_folder_and_tar_give_identical_arrays(tmp_path):
    batches = make_batches(seed=4)
    payloads = payloads_of(batches, 4)
    from_folder = load_cifar10(write_folder(tmp_path / "f", payloads))
    from_tar = load_cifar10(write_tar(tmp_path / "c.tar.gz", payloads))
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(from_folder, field), getattr(from_tar, field))


def test_python3_protocol2_batches_load(tmp_path):
    """Protocol 2 is the official protocol; Python 3 writes bytes at protocol 2 as
    `_codecs.encode(str, 'latin1')`, which a CIFAR-style batch written today contains."""
    batches = make_batches(seed=5)
    folder = write_folder(tmp_path, payloads_of(batches, 2))
    assert_dataset_matches(load_cifar10(folder), batches)


# ----------------------------------------------------------------------------- unpickle_batch

@pytest.mark.parametrize("protocol", ["py2", 3, 4])
def test_unpickle_batch_valid_payload(protocol):
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    payload = dumps({b"data": data, b"labels": [9, 0, 4], b"batch_label": b"x",
                     b"filenames": [b"a.png", b"b.png", b"c.png"]}, protocol)
    images, labels = unpickle_batch(payload, "somewhere/batch")
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert images.flags["C_CONTIGUOUS"]
    assert labels.dtype == np.int64 and labels.tolist() == [9, 0, 4]
    assert_pixels_by_hand(images, data)
    np.testing.assert_array_equal(images, expected_images(data))


def test_unpickle_batch_python3_protocol2_payload():
    data = np.arange(3072, dtype=np.int64).astype(np.uint8)[None, :]
    images, labels = unpickle_batch(pickle.dumps({b"data": data, b"labels": [3]}, protocol=2),
                                    "p2")
    assert labels.tolist() == [3]
    assert images[0, 0, 0, 1] == 1024 % 256 and images[0, 1, 2, 0] == 34


def test_unpickle_batch_accepts_str_keys_and_empty_batch():
    images, labels = unpickle_batch(
        pickle.dumps({"data": np.zeros((0, 3072), np.uint8), "labels": []}, protocol=4), "e")
    assert images.shape == (0, 32, 32, 3) and labels.shape == (0,)


@pytest.mark.parametrize("batch, fault", [
    ([1, 2, 3], "expected a dict"),
    ({b"labels": [0]}, "missing 'data' or 'labels'"),
    ({b"data": np.zeros((1, 3072), np.float32), b"labels": [0]}, "must be uint8"),
    ({b"data": np.zeros((3072,), np.uint8), b"labels": [0]}, "must be uint8"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "labels of shape"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [b"cat"]}, "must be integers"),
])
def test_unpickle_batch_rejects_bad_structure(batch, fault):
    with pytest.raises(DatasetError) as error:
        unpickle_batch(pickle.dumps(batch, protocol=4), "where/batch_x")
    assert "where/batch_x" in str(error.value) and fault in str(error.value)


# ----------------------------------------------------------------------------- hostile pickles

class _SystemCall:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _OpenCall:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def _hostile_payloads(marker):
    """(payload, refused global) pairs; each would create `marker` if unpickled freely."""
    system_global = f"{os.system.__module__}.system"          # posix.system on Linux
    open_global = f"{open.__module__}.{open.__qualname__}"    # io.open
    handmade = (b"\x80\x02cbuiltins\nopen\nX" + struct.pack("<I", len(marker.encode()))
                + marker.encode() + b"X\x01\x00\x00\x00w\x86R.")
    return [
        (pickle.dumps(_SystemCall(f"touch '{marker}'"), protocol=2), system_global),
        (pickle.dumps(_OpenCall(marker), protocol=4), open_global),
        # Hidden inside an otherwise valid-looking batch dict.
        (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0],
                       b"batch_label": _SystemCall(f"touch '{marker}'")}, protocol=4),
         system_global),
        (handmade, "builtins.open"),
    ]


def test_hostile_payloads_are_really_hostile(tmp_path):
    """Sanity check of the test payloads: plain pickle.loads would create the marker."""
    marker = tmp_path / "marker"
    for payload, _ in _hostile_payloads(str(marker)):
        result = pickle.loads(payload)
        if hasattr(result, "close"):
            result.close()
        assert marker.exists()
        marker.unlink()


@pytest.mark.parametrize("case", range(4))
def test_unpickle_batch_refuses_code_execution(tmp_path, case):
    marker = tmp_path / "marker"
    payload, refused = _hostile_payloads(str(marker))[case]
    with pytest.raises(DatasetError) as error:
        unpickle_batch(payload, "evil/test_batch")
    message = str(error.value)
    assert not marker.exists()
    assert "evil/test_batch" in message and f"'{refused}'" in message and "refused" in message


@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("container", ["folder", "tar"])
def test_load_refuses_hostile_batch_and_names_file(tmp_path, case, container):
    marker = tmp_path / "marker"
    payload, refused = _hostile_payloads(str(marker))[case]
    payloads = payloads_of(make_batches(seed=8), 4)
    payloads["data_batch_3"] = payload
    if container == "folder":
        path = write_folder(tmp_path / "data", payloads)
        named = os.path.join(path, "data_batch_3")
    else:
        path = write_tar(tmp_path / "cifar-10-python.tar.gz", payloads)
        named = os.path.join(path, "data_batch_3")
    with pytest.raises(DatasetError) as error:
        load_cifar10(path)
    assert not marker.exists()
    assert named in str(error.value) and f"'{refused}'" in str(error.value)


# ----------------------------------------------------------------------------- hostile archives

@pytest.mark.parametrize("member_name", ["../escape", f"{FOLDER}/../../escape", "/tmp_escape_abs"])
def test_tar_member_leaving_archive_is_refused(tmp_path, monkeypatch, member_name):
    work = tmp_path / "inner" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    payload = b"escaped!"
    archive = write_tar(work / "cifar-10-python.tar.gz", payloads_of(make_batches(seed=9), 4),
                        extra=[(_file_info(member_name, len(payload)), payload)])
    before = listing(tmp_path)
    with pytest.raises(DatasetError) as error:
        load_cifar10(archive)
    message = str(error.value)
    assert archive in message and member_name in message and "leaves the archive" in message
    assert listing(tmp_path) == before
    assert not (tmp_path / "inner" / "escape").exists()
    assert not (tmp_path / "escape").exists()
    assert not os.path.exists("/tmp_escape_abs")


@pytest.mark.parametrize("link_type", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_tar_link_member_is_refused(tmp_path, link_type):
    link = tarfile.TarInfo(f"{FOLDER}/test_batch_link")
    link.type = link_type
    link.linkname = "/etc/passwd" if link_type == tarfile.SYMTYPE else f"{FOLDER}/test_batch"
    archive = write_tar(tmp_path / "cifar-10-python.tar.gz",
                        payloads_of(make_batches(seed=10), 4), extra=[(link, None)])
    with pytest.raises(DatasetError) as error:
        load_cifar10(archive)
    message = str(error.value)
    assert archive in message and "test_batch_link" in message and "link" in message


def test_empty_archive_is_refused(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"")
    with pytest.raises(DatasetError) as error:
        load_cifar10(str(archive))
    assert str(archive) in str(error.value) and "empty" in str(error.value)


def test_truncated_archive_is_refused(tmp_path):
    valid = write_tar(tmp_path / "valid.tar.gz", payloads_of(make_batches(seed=11), 4))
    load_cifar10(valid)  # the full archive is fine
    with open(valid, "rb") as handle:
        content = handle.read()
    truncated = tmp_path / "cifar-10-python.tar.gz"
    truncated.write_bytes(content[:len(content) // 2])
    with pytest.raises(DatasetError) as error:
        load_cifar10(str(truncated))
    assert str(truncated) in str(error.value)
    assert "truncated or corrupt" in str(error.value)


def test_non_archive_file_is_refused(tmp_path):
    path = tmp_path / "notes.tar.gz"
    path.write_bytes(b"this is not a tar archive at all\n" * 40)
    with pytest.raises(DatasetError) as error:
        load_cifar10(str(path))
    assert str(path) in str(error.value)


# ----------------------------------------------------------------------------- broken batches

@pytest.mark.parametrize("container", ["folder", "tar"])
def test_batch_with_3071_columns_is_refused(tmp_path, container):
    batches = make_batches(seed=12)
    batches["data_batch_4"][b"data"] = batches["data_batch_4"][b"data"][:, :3071].copy()
    payloads = payloads_of(batches, 4)
    if container == "folder":
        path = write_folder(tmp_path, payloads)
    else:
        path = write_tar(tmp_path / "cifar-10-python.tar.gz", payloads)
    with pytest.raises(DatasetError) as error:
        load_cifar10(path)
    message = str(error.value)
    assert os.path.join(path, "data_batch_4") in message and "3071" in message


@pytest.mark.parametrize("bad_label", [10, -1])
def test_labels_outside_0_to_9_are_refused(tmp_path, bad_label):
    batches = make_batches(seed=13)
    batches["test_batch"][b"labels"][2] = bad_label
    folder = write_folder(tmp_path, payloads_of(batches, 4))
    with pytest.raises(DatasetError) as error:
        load_cifar10(folder)
    message = str(error.value)
    assert os.path.join(folder, "test_batch") in message and "0-9" in message
    assert str(bad_label) in message


def test_fractional_labels_are_refused_not_truncated(tmp_path):
    batches = make_batches(seed=13)
    batches["test_batch"][b"labels"] = [0.9, 9.99, 1.0, 2.0]
    folder = write_folder(tmp_path, payloads_of(batches, 4))
    with pytest.raises(DatasetError, match="'labels' must be integers"):
        load_cifar10(folder)


def test_missing_test_batch_in_folder(tmp_path):
    payloads = payloads_of(make_batches(seed=14), 4)
    del payloads["test_batch"]
    folder = write_folder(tmp_path, payloads)
    for path in (folder, str(tmp_path)):
        with pytest.raises(DatasetError) as error:
            load_cifar10(path)
        assert path in str(error.value) and "test_batch" in str(error.value)


def test_missing_test_batch_in_archive(tmp_path):
    payloads = payloads_of(make_batches(seed=15), 4)
    del payloads["test_batch"]
    archive = write_tar(tmp_path / "cifar-10-python.tar.gz", payloads)
    with pytest.raises(DatasetError) as error:
        load_cifar10(archive)
    assert archive in str(error.value) and "missing test_batch" in str(error.value)


def test_missing_training_batch_in_folder(tmp_path):
    payloads = payloads_of(make_batches(seed=16), 4)
    del payloads["data_batch_4"]
    folder = write_folder(tmp_path, payloads)
    with pytest.raises(DatasetError) as error:
        load_cifar10(folder)
    assert folder in str(error.value) and "missing data_batch_4" in str(error.value)


@pytest.mark.parametrize("keep", [0.5, 0.0, 0.999])
def test_truncated_pickle_in_folder(tmp_path, keep):
    payloads = payloads_of(make_batches(seed=17), 4)
    payload = payloads["data_batch_2"]
    payloads["data_batch_2"] = payload[:int(len(payload) * keep)]
    folder = write_folder(tmp_path, payloads)
    with pytest.raises(DatasetError) as error:
        load_cifar10(folder)
    message = str(error.value)
    assert os.path.join(folder, "data_batch_2") in message and "pickle" in message


def test_path_that_does_not_exist(tmp_path):
    missing = str(tmp_path / "nowhere" / "cifar-10-python.tar.gz")
    with pytest.raises(DatasetError) as error:
        load_cifar10(missing)
    assert missing in str(error.value) and "no such file" in str(error.value)
