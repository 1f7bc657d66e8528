"""Mutated inputs (bench/fuzz_inputs.py): a fixed few cases of each target in the default run,
each read as written or refused with the project's one-line error, and one test per fault the
full loop found, each with the smallest input that shows it."""
import json
import os
import pickle
import struct
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import compare
from pyimagesearch import cifar10, comparison, figures
from pyimagesearch.cifar10 import DatasetError, load_cifar10, unpickle_batch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import fuzz_inputs  # noqa: E402

# Cases per target here: enough that every mutation kind comes up, few enough to take seconds.
CASES = {"archive": 30, "pickle": 30, "compare": 16, "figures": 16}


@pytest.fixture(scope="module")
def bases():
    return fuzz_inputs.DatasetBase(), fuzz_inputs.json_bases()


@pytest.mark.parametrize("target", fuzz_inputs.TARGETS)
def test_fixed_cases_are_read_or_refused_in_one_line(bases, target):
    dataset, runs = bases
    cases = fuzz_inputs.run_cases([target], CASES[target], fuzz_inputs.SEED, dataset=dataset,
                                  runs=runs)
    failures = [f"{case.name} {case.kind}: {case.outcome}: {case.message}" for case in cases
                if case.outcome not in fuzz_inputs.ACCEPTED]
    assert failures == []
    assert sorted({case.kind for case in cases}) == sorted(fuzz_inputs.kinds(target))
    assert any(case.outcome == "refused" for case in cases)
    assert any(case.outcome.startswith("read") for case in cases)


# ----------------------------------------------------------------------------- the dataset

def tiny_payloads(flavour=fuzz_inputs.FLAVOURS[0]):
    return {name: fuzz_inputs.pickled(batch, flavour)
            for name, batch in fuzz_inputs.tiny_batches().items()}


def valid_batch_pickle(extra=()):
    batch = {b"data": np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072), b"labels": [3, 7]}
    batch.update(extra)
    return fuzz_inputs.pickled(batch, fuzz_inputs.FLAVOURS[0])


def test_archive_with_damaged_compressed_pixels_is_refused(tmp_path):
    """Where gzip stores bytes as they are (incompressible ones; all of them at level 0), a
    flipped byte decompresses to a changed pixel, and only the checksum at the end of the stream
    tells."""
    tar = fuzz_inputs.tar_bytes(tiny_payloads())
    archive = bytearray(fuzz_inputs.gzip.compress(tar, compresslevel=0, mtime=0))
    pixels = fuzz_inputs.tiny_batches()[cifar10.TEST_BATCH][b"data"].tobytes()
    at = archive.find(pixels[:64])
    assert at > 0
    archive[at + 10] ^= 0xFF
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(archive)
    with pytest.raises(DatasetError) as error:
        load_cifar10(str(path))
    assert str(path) in str(error.value) and "corrupt archive" in str(error.value)


def test_a_large_memo_index_costs_no_memory():
    """Python's C unpickler sizes its memo table by the largest index a file names: nine bytes
    made it allocate and clear gigabytes."""
    payload = valid_batch_pickle()
    assert payload.endswith(b".")
    payload = payload[:-1] + b"Nr" + struct.pack("<I", 2 ** 25) + b"0."  # None, memo, pop
    tracemalloc.start()
    try:
        images, labels = unpickle_batch(payload, "memo")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert labels.tolist() == [3, 7] and images.shape == (2, 32, 32, 3)
    assert peak < 32 * 2 ** 20


RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's _reconstruct, which every array pickles with


def test_a_length_a_pickle_names_is_not_allocated_before_it_is_read():
    """Protocol 5's BYTEARRAY8 makes an unpickler allocate the size the file names before
    reading it (Python's own unpickler clears it too): nine bytes, gigabytes."""
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError) as error:
            unpickle_batch(b"\x80\x05\x96" + struct.pack("<Q", 2 ** 28) + b".", "long")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "long: " in str(error.value) and peak < 32 * 2 ** 20


def test_dict_keys_that_share_a_hash_are_refused_before_they_are_inserted():
    """Integers that differ by 2**61 - 1 share a hash: each insertion scanned every earlier one,
    so the time grew with the square of the file (440 kB took seconds, a batch's size hours)."""
    keys = b"".join(pickle.dumps(index * (2 ** 61 - 1), protocol=4)[2:-1] + b"N"
                    for index in range(1, 20_000))
    with pytest.raises(DatasetError) as error:
        unpickle_batch(b"\x80\x04}(" + keys + b"u.", "flood")
    assert "flood: " in str(error.value) and "dict or set entries" in str(error.value)


class _Reduced:
    """Pickles as the call `function(*arguments)`, then BUILD with `state` if given."""

    def __init__(self, function, arguments, state=None):
        self.function, self.arguments, self.state = function, arguments, state

    def __reduce__(self):
        return (self.function, self.arguments) + ((self.state,) if self.state is not None else ())


def test_object_array_with_too_few_items_is_refused_not_a_segfault(tmp_path):
    """numpy's ndarray.__setstate__ reads past an object array's short list of items (numpy 2.4
    segfaults); the loader's allowed globals could build one, so they no longer build arrays of
    objects at all."""
    short = _Reduced(RECONSTRUCT, (np.ndarray, (0,), b"b"),
                     (1, (10,), np.dtype(object), False, [1, 2]))
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": short, b"labels": [0]}, protocol=2))
    program = ("import sys; from pyimagesearch.cifar10 import DatasetError, unpickle_batch\n"
               "try:\n    unpickle_batch(open(sys.argv[1], 'rb').read(), 'short')\n"
               "except DatasetError as error:\n    print('refused:', error)\n")
    done = subprocess.run([sys.executable, "-c", program, str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("refused: short: ")


def test_an_array_is_not_allocated_from_the_shape_a_pickle_names():
    """`_reconstruct(ndarray, shape, 'O')` made numpy allocate (and fill with None) whatever
    shape the file asked for; numpy itself always writes shape (0,) there."""
    huge = _Reduced(RECONSTRUCT, (np.ndarray, (2 ** 25,), b"O"))
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError) as error:
            unpickle_batch(pickle.dumps({b"data": huge, b"labels": []}, protocol=2), "big")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "big: " in str(error.value) and peak < 32 * 2 ** 20


def test_a_key_that_is_not_utf8_does_not_stop_the_batch():
    """The official batches' keys are Python 2 byte strings: one with a stray byte is read as a
    key of no interest, not a UnicodeDecodeError."""
    images, labels = unpickle_batch(valid_batch_pickle({b"filen\xe1mes": [b"a", b"b"]}), "key")
    assert labels.tolist() == [3, 7]


@pytest.mark.parametrize("labels", [[0, [1, 2]], [[0], [1, 2]]])
def test_ragged_labels_are_refused(labels):
    with pytest.raises(DatasetError) as error:
        unpickle_batch(valid_batch_pickle({b"labels": labels}), "where/ragged")
    assert "where/ragged: 'labels' must be integers" in str(error.value)


# ----------------------------------------------------------------------------- a run's JSON

def finished_run():
    with open(os.path.join(ROOT, "results", "default", "loss.json"), encoding="utf-8") as handle:
        return json.load(handle)


def refusal(capsys, main, path, tmp_path):
    """(exit code, stderr) of compare's or figures' main on `path`."""
    code = main([str(path), "--plot", str(tmp_path / "c.png")] if main is compare.main
                else [str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("main", [compare.main, figures.main], ids=["compare", "figures"])
def test_json_nested_deeper_than_the_parser_goes_is_refused(tmp_path, capsys, main):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    code, err = refusal(capsys, main, path, tmp_path)
    assert code == 2 and err.count("\n") == 1 and f"{path}: not JSON" in err


def _set(run, dotted, value):
    *parents, last = dotted.split(".")
    for key in parents:
        run = run[key]
    if value is _DROP:
        del run[last]
    else:
        run[last] = value


_DROP = object()

# Each a value that made compare.py's or the figures' drawing raise (TypeError, ValueError,
# KeyError, IndexError, OverflowError) past the JSON parser, and the field the refusal names.
BAD_FIELDS = [
    ("args", [], "'args' must be an object"),
    ("args.smoothing", "0.1", "'args.smoothing' must be a finite number"),
    ("method", ["loss"], "'method' must be a string"),
    ("recipe", "fast", "'recipe' must be an object"),
    ("recipe.lr", "x", "'recipe.lr' must be a number"),
    ("history", [1], "'history' must be an object"),
    ("history.val_accuracy", [0.5, [0.5, 0.6]], "'history.val_accuracy' must be a list of"),
    ("history.loss", 5, "'history.loss' must be a list of numbers"),
    ("test_metrics.ece", "low", "'test_metrics.ece' must be a number"),
    ("test_metrics.nll", 10 ** 400, "'test_metrics.nll' must be a number"),
    ("one_view", [None], "'one_view' must be an object"),
    ("wall_seconds", "61", "'wall_seconds' must be a number"),
    ("reliability_bins.accuracy", _DROP, "'reliability_bins.accuracy' is missing"),
    ("reliability_bins.count", [], "'reliability_bins.count' must be a non-empty list"),
    ("reliability_bins.count", [1e308] * 15, "'reliability_bins.count' must be"),
    ("reliability_bins.count", [10 ** 30] * 15, "'reliability_bins.count' must be"),
    ("reliability_bins.mean_confidence", [0.5] * 14, "'reliability_bins.mean_confidence' must hold one value per bin (15)"),
]


@pytest.mark.parametrize("main", [compare.main, figures.main], ids=["compare", "figures"])
@pytest.mark.parametrize("field, value, fault", BAD_FIELDS,
                         ids=[f"{field}={value!r}"[:40] for field, value, _ in BAD_FIELDS])
def test_run_json_of_the_wrong_shape_is_refused_naming_the_field(tmp_path, capsys, main, field,
                                                                  value, fault):
    run = finished_run()
    _set(run, field, value)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    code, err = refusal(capsys, main, path, tmp_path)
    assert code == 2 and err.count("\n") == 1 and f"{path}: {fault}" in err


def test_a_diverged_run_needs_no_test_metrics_but_a_history_of_numbers(tmp_path, capsys):
    run = fuzz_inputs.diverged(finished_run())
    path = tmp_path / "stopped.json"
    path.write_text(json.dumps(run))
    assert figures.main([str(path)]) == 0
    run["history"]["accuracy"] = [0.1, "high"]
    path.write_text(json.dumps(run))
    code, err = refusal(capsys, figures.main, path, tmp_path)
    assert code == 2 and "'history.accuracy' must be a list of numbers" in err


def test_every_committed_run_json_still_reads():
    """The checks refuse only what no script writes: every run's JSON under results/ (finished,
    or not, as the figures tell them apart) passes them."""
    checked = 0
    for folder, _, names in os.walk(os.path.join(ROOT, "results")):
        for path in (os.path.join(folder, name) for name in names if name.endswith(".json")):
            run = comparison.read_json(path)
            if isinstance(run, dict) and {"method", "args", "history"} <= run.keys():
                comparison.check_run(run, path, finished="reliability_bins" in run)
                checked += 1
    assert checked > 30
