"""Mutated inputs: every kind of file a user hands the project, damaged at random, must be read
or refused in one line, never crash, hang or eat the machine's memory.

    python bench/fuzz_inputs.py                          # 500 cases per target, seed 26
    python bench/fuzz_inputs.py --cases 50 --targets archive,compare
    python bench/fuzz_inputs.py --case pickle:17         # one case, with its traceback

Targets, each a reader of files that come from outside:
  archive   cifar10.load_cifar10 on a tiny cifar-10-python.tar.gz in the official layout, damaged
            in its gzip bytes, or in the tar inside it (compressed again afterwards, so that the
            damage gets past gzip's checksum to the tar headers and the pickles)
  pickle    cifar10.load_cifar10 on a cifar-10-batches-py/ folder with one batch pickle damaged:
            Python 2's protocol 2, as the official files are, or protocol 4
  compare   compare.main on a finished run's JSON (the originals are results/'s)
  figures   pyimagesearch.figures.main on a run's JSON, finished or diverged
Damage: byte flips, a truncation, an insertion of random bytes; for JSON also a value replaced by
one of another type, a key or list item dropped, or a value nested thousands of lists deep, which
keep the file JSON so that the checks past the parser are reached. Half the byte positions in the
dataset are drawn from the bytes that are not pixels (tar headers, pickle opcodes): a batch is
mostly pixels, and flipping those only tests that no checksum covers them.

Each case runs in this process under an alarm (over --case-seconds is a hang) and an address-space
limit (an allocation out of proportion to a file of a few kB fails here instead of taking the
machine). Outcomes: read (as written), read changed (bytes that no checksum covers were changed,
and the reader cannot know), refused (the project's error: one line, a non-zero exit) and the
failures: crash (any other exception: a traceback), hang, memory, a read that returned wrong
shapes, a refusal of more than one line, a read changed where a checksum covers the bytes.
Then --cli-sample cases of each target run again through the real command in a fresh process:
exit code, one line on stderr, no traceback, and the same outcome as in this process.
"""
import argparse
import contextlib
import copy
import datetime
import gzip
import io
import json
import os
import pickle
import resource
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import warnings

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import compare  # noqa: E402
from pyimagesearch import cifar10, figures  # noqa: E402
from pyimagesearch.errors import RunError  # noqa: E402

# ----------------------------------------------------------------------------- settings
TARGETS = ("archive", "pickle", "compare", "figures")
CASES = 500            # per target: the issue asks for at least 500
SEED = 26              # fixed, so that the default run repeats itself
CASE_SECONDS = 5       # "none over a few seconds": a case that takes longer is a hang
CLI_SAMPLE = 4         # cases per target run again through the real command, in a fresh process
CLI_SECONDS = 120      # a fresh process's limit: TensorFlow's import alone takes seconds
MEMORY_HEADROOM = 1 << 30  # address space a case may add: the inputs are a few kB
OUT = os.path.join("results", "reliability", "fuzz_inputs.txt")  # under the checkout

IMAGES_PER_BATCH = 2   # tiny batches, so that a case takes milliseconds
FLAVOURS = ("protocol 2 (Python 2)", "protocol 4")  # the official files'; Python 3's default
BYTE_KINDS = ("flip", "truncate", "insert")
JSON_KINDS = BYTE_KINDS + ("value", "drop", "deep")
# What a "value" mutation puts in place of a JSON value: every JSON type, empty and odd ones
REPLACEMENTS = (None, True, False, 0, -1, 0.5, 1e308, float("nan"), float("inf"), -float("inf"),
                10 ** 30, "", "x", [], {}, [None], [1, "a"], {"x": None})
JSON_BASES = ("results/default", "results/study/default", "results/study/long",
              "results/study/long_no_decay")


def kinds(target):
    """Every mutation kind of `target`, as its cases name them."""
    if target == "archive":
        return [f"{layer} {kind}" for layer in ("gzip", "tar") for kind in BYTE_KINDS]
    if target == "pickle":
        return [f"{flavour} {kind}" for flavour in FLAVOURS for kind in BYTE_KINDS]
    return list(JSON_KINDS)


class CaseTimeout(BaseException):
    """Raised by the alarm: a BaseException, so that no reader's `except Exception` hides it."""


def _raise_timeout(signum, frame):
    raise CaseTimeout()


# ----------------------------------------------------------------------------- base inputs

class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 wrote `str` (SHORT_BINSTRING / BINSTRING) at protocol 2, as the
    official CIFAR-10 batches hold them, instead of Python 3's `_codecs.encode` call."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def pickled(batch, flavour):
    if flavour == FLAVOURS[1]:
        return pickle.dumps(batch, protocol=4)
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(batch)
    # numpy 1.x under Python 2 wrote numpy.core, as the official files name it
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def tiny_batches():
    """{file name: batch dict} of a CIFAR-10 with IMAGES_PER_BATCH random images per batch."""
    rng = np.random.default_rng(0)
    batches = {}
    for number, name in enumerate(cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,)):
        batches[name] = {
            b"batch_label": f"{name} of 6".encode(),
            b"labels": [(3 * number + index) % 10 for index in range(IMAGES_PER_BATCH)],
            b"data": rng.integers(0, 256, (IMAGES_PER_BATCH, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{index}.png".encode() for index in range(IMAGES_PER_BATCH)]}
    return batches


def tar_bytes(payloads):
    """An uncompressed tar in the official layout: the folder, then its files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        folder = tarfile.TarInfo(cifar10.FOLDER_NAME)
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(folder)
        for name, payload in payloads.items():
            info = tarfile.TarInfo(f"{cifar10.FOLDER_NAME}/{name}")
            info.size, info.mode = len(payload), 0o644
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def structure_positions(data, pixel_blocks):
    """Byte positions of `data` outside every pixel block (headers, opcodes, labels)."""
    structure = np.ones(len(data), bool)
    for block in pixel_blocks:
        start = data.find(block)
        if start >= 0:
            structure[start:start + len(block)] = False
    return np.flatnonzero(structure)


class DatasetBase:
    """One tiny dataset per pickle flavour, as batch pickles, a tar and a .tar.gz."""

    def __init__(self):
        batches = tiny_batches()
        pixels = [batch[b"data"].tobytes() for batch in batches.values()]
        self.flavours = {}
        for flavour in FLAVOURS:
            payloads = {name: pickled(batch, flavour) for name, batch in batches.items()}
            payloads["batches.meta"] = pickled({b"label_names": [name.encode() for name in
                                                                 cifar10.CLASS_NAMES]}, flavour)
            payloads["readme.html"] = b"<html>tiny</html>\n"
            tar = tar_bytes(payloads)
            self.flavours[flavour] = {
                "payloads": payloads, "tar": tar, "gzip": gzip.compress(tar, mtime=0),
                "tar structure": structure_positions(tar, pixels),
                "pickle structure": {name: structure_positions(payload, pixels)
                                     for name, payload in payloads.items()}}
        self.expected = {
            "train_images": np.concatenate([cifar10.unpickle_batch(
                pickled(batches[name], FLAVOURS[1]), name)[0] for name in cifar10.TRAIN_BATCHES]),
            "train_labels": np.concatenate([batches[name][b"labels"]
                                            for name in cifar10.TRAIN_BATCHES]).astype(np.int64),
            "test_images": cifar10.unpickle_batch(pickled(batches[cifar10.TEST_BATCH],
                                                          FLAVOURS[1]), "test")[0],
            "test_labels": np.array(batches[cifar10.TEST_BATCH][b"labels"], np.int64)}


def json_bases():
    """{name: run dict} of the committed runs' JSON, and a diverged run made from the first."""
    bases = {}
    for folder in JSON_BASES:
        for name in sorted(os.listdir(os.path.join(REPO_ROOT, folder))):
            if name.endswith(".json"):
                with open(os.path.join(REPO_ROOT, folder, name), encoding="utf-8") as handle:
                    bases[f"{folder}/{name}"] = json.load(handle)
    return bases


def diverged(run):
    """The JSON a run that diverged in its last epoch writes: no test metrics, a NaN (null)."""
    run = copy.deepcopy(run)
    for key in ("test_accuracy", "test_metrics", "temperature", "test_metrics_temperature_scaled",
                "reliability_bins", "reliability_bins_temperature_scaled",
                "classification_report", "one_view"):
        run.pop(key, None)
    run["diverged"] = True
    for values in run["history"].values():
        if values:
            values[-1] = None
    return run


# ----------------------------------------------------------------------------- mutations

def mutate_bytes(data, kind, rng, structure=None):
    """`data` with one mutation of `kind`; half the positions from `structure` if given."""
    def position(end):
        if structure is not None and len(structure) and rng.random() < 0.5:
            return int(structure[rng.integers(len(structure))])
        return int(rng.integers(end))

    data = bytearray(data)
    if kind == "flip":
        for _ in range(int(rng.integers(1, 5))):
            data[position(len(data))] ^= int(rng.integers(1, 256))
    elif kind == "truncate":
        del data[position(len(data)):]
    else:  # insert
        at = position(len(data) + 1)
        data[at:at] = rng.bytes(int(rng.integers(1, 17)))
    return bytes(data)


def json_nodes(value, path=()):
    """Every (path, value) in a JSON document, the root included."""
    yield path, value
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from json_nodes(child, path + (key,))


def mutate_json(run, kind, rng):
    """The text of `run` with one mutation of `kind` (JSON_KINDS)."""
    if kind in BYTE_KINDS:
        return mutate_bytes(json.dumps(run, indent=2).encode(), kind, rng)
    run = copy.deepcopy(run)
    if kind == "drop":
        parents = [(path, node) for path, node in json_nodes(run)
                   if isinstance(node, (dict, list)) and node]
        _, parent = parents[rng.integers(len(parents))]
        keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
        del parent[keys[rng.integers(len(keys))]]
        return json.dumps(run, indent=2).encode()
    paths = [path for path, _ in json_nodes(run) if path]
    path = paths[rng.integers(len(paths))]
    if kind == "value":
        new = copy.deepcopy(REPLACEMENTS[rng.integers(len(REPLACEMENTS))])
    else:  # deep: more levels than Python's recursion limit, for some cases
        depth = int(10 ** rng.uniform(1, 5))
        new = "@DEEP@"
    parent = run
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    text = json.dumps(run, indent=2)
    if kind == "deep":
        text = text.replace('"@DEEP@"', "[" * depth + "]" * depth)
    return text.encode()


# ----------------------------------------------------------------------------- one case

class Case:
    """One fuzz case: which target, how its input was damaged, what the reader did."""

    def __init__(self, target, number, kind, detail, write):
        self.target, self.number, self.kind, self.detail = target, number, kind, detail
        self.write = write  # write(folder) -> the path the reader gets
        self.outcome, self.message, self.seconds, self.warnings = None, "", 0.0, []

    @property
    def name(self):
        return f"{self.target}:{self.number}"


def make_case(target, number, seed, dataset, runs):
    """The `number`th case of `target`, the same for the same seed."""
    rng = np.random.default_rng([seed, TARGETS.index(target), number])
    if target == "archive":
        flavour = FLAVOURS[rng.integers(len(FLAVOURS))]
        layer, kind = ("gzip", "tar")[rng.integers(2)], BYTE_KINDS[rng.integers(3)]
        base = dataset.flavours[flavour]
        if layer == "gzip":
            data = mutate_bytes(base["gzip"], kind, rng)
        else:
            data = gzip.compress(mutate_bytes(base["tar"], kind, rng, base["tar structure"]),
                                 mtime=0)
        return Case(target, number, f"{layer} {kind}", flavour,
                    lambda folder: _write(os.path.join(folder, "cifar-10-python.tar.gz"), data))
    if target == "pickle":
        flavour = FLAVOURS[rng.integers(len(FLAVOURS))]
        names = cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,)
        name, kind = names[rng.integers(len(names))], BYTE_KINDS[rng.integers(3)]
        base = dataset.flavours[flavour]
        payloads = dict(base["payloads"])
        payloads[name] = mutate_bytes(payloads[name], kind, rng, base["pickle structure"][name])
        return Case(target, number, f"{flavour} {kind}", name,
                    lambda folder: _write_folder(folder, payloads))
    names = sorted(runs)
    base_name = names[rng.integers(len(names))]
    run = runs[base_name]
    if target == "figures" and rng.random() < 0.25:
        run, base_name = diverged(run), base_name + " (diverged)"
    kind = JSON_KINDS[rng.integers(len(JSON_KINDS))]
    text = mutate_json(run, kind, rng)
    return Case(target, number, kind, base_name,
                lambda folder: _write(os.path.join(folder, "run.json"), text))


def _write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def _write_folder(folder, payloads):
    batches = os.path.join(folder, cifar10.FOLDER_NAME)
    os.makedirs(batches)
    for name, payload in payloads.items():
        _write(os.path.join(batches, name), payload)
    return batches


def read_dataset(path, expected):
    """'read' or 'read changed' for data of the right shapes; raises for wrong ones."""
    data = cifar10.load_cifar10(path)
    for images, labels in ((data.train_images, data.train_labels),
                           (data.test_images, data.test_labels)):
        if images.dtype != np.uint8 or images.shape[1:] != cifar10.IMAGE_SHAPE \
                or labels.dtype != np.int64 or labels.shape != (len(images),) \
                or (labels.size and not 0 <= labels.min() <= labels.max() < 10):
            return "wrong shapes", f"{images.dtype} {images.shape}, {labels.dtype} {labels.shape}"
    same = all(np.array_equal(getattr(data, field), value) for field, value in expected.items())
    return ("read" if same else "read changed"), ""


def command_of(case, path, folder):
    """argv of the real command that reads `path`, in a fresh process."""
    if case.target in ("archive", "pickle"):
        # a --train-size no tiny dataset has: a dataset that reads stops right after loading
        return [sys.executable, "label_smoothing_loss.py", "--dataset", path, "--plot",
                os.path.join(folder, "run", "plot.png"), "--train-size", "1000000",
                "--epochs", "1"]
    if case.target == "compare":
        return [sys.executable, "compare.py", path, "--plot", os.path.join(folder, "c.png")]
    return [sys.executable, "-m", "pyimagesearch.figures", path]


def run_in_process(case, folder, dataset, seconds):
    """Run the reader on `case`'s input; set case.outcome, .message, .seconds."""
    path = case.write(folder)
    stdout, stderr = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _raise_timeout)
    started = time.perf_counter()
    signal.alarm(seconds)
    try:
        with warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            warnings.simplefilter("always")
            if case.target in ("archive", "pickle"):
                case.outcome, case.message = read_dataset(path, dataset.expected)
                if case.outcome == "read changed" and case.kind.startswith("gzip"):
                    case.outcome = "read changed under a checksum"
            else:
                code = (compare.main([path, "--plot", os.path.join(folder, "c.png")])
                        if case.target == "compare" else figures.main([path]))
                lines = stderr.getvalue().splitlines()
                case.message = stderr.getvalue().strip()
                case.outcome = "read" if code == 0 and not lines else \
                    "refused" if code != 0 and len(lines) == 1 else \
                    f"exit {code} with {len(lines)} lines on stderr"
        signal.alarm(0)
        case.warnings = [str(warning.message) for warning in caught]
        if caught and case.outcome == "refused":  # more than the one line on stderr
            case.outcome = "refused, with warnings"
            case.message += " | " + "; ".join(case.warnings)
    except RunError as error:
        signal.alarm(0)
        case.message = " ".join(str(error).split())
        case.outcome = "memory" if isinstance(error.__context__, MemoryError) else "refused"
    except CaseTimeout:
        case.outcome, case.message = "hang", f"stopped after {seconds} s"
    except MemoryError as error:
        signal.alarm(0)
        case.outcome, case.message = "memory", _where(error)
    except Exception as error:  # the failure this loop looks for: what a reader did not expect
        signal.alarm(0)
        case.outcome, case.message = "crash", _where(error)
    finally:
        signal.alarm(0)
        figures.plt.close("all")
    case.seconds = time.perf_counter() - started
    if case.seconds > seconds and case.outcome != "hang":
        case.outcome, case.message = "hang", f"took {case.seconds:.1f} s; " + case.message
    case.message = case.message.replace(folder, "TMP")  # the report names no machine's paths


def _where(error):
    """'TypeError: ... (figures.py:54 in series)': the exception and its innermost frame; the
    whole traceback with --case."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return (f"{type(error).__name__}: {error} ({os.path.basename(frame.filename)}:{frame.lineno} "
            f"in {frame.name})\n" + "".join(traceback.format_exception(error)))


ACCEPTED = ("read", "read changed", "refused")


def run_cases(targets, cases, seed, seconds=CASE_SECONDS, only=None, dataset=None, runs=None):
    """Run `cases` cases of each target in this process (or just `only`, a case number);
    returns the Case objects. The address space is limited while they run."""
    dataset = dataset or DatasetBase()
    runs = runs or json_bases()
    done = []
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY
                                            else min(limit, hard), hard))
    try:
        with tempfile.TemporaryDirectory(prefix="fuzz-inputs-") as work:
            for target in targets:
                for number in ([only] if only is not None else range(cases)):
                    case = make_case(target, number, seed, dataset, runs)
                    folder = os.path.join(work, case.name.replace(":", "-"))
                    os.makedirs(folder)
                    run_in_process(case, folder, dataset, seconds)
                    shutil.rmtree(folder)
                    done.append(case)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    return done


def _address_space():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * resource.getpagesize()


def run_fresh(case, seconds=CLI_SECONDS):
    """Rerun `case` through its real command in a fresh process: (None, what it did) if it
    behaved as in this process (the exit code a read or a refusal gives, one line on stderr, no
    traceback), else (what was wrong, what it did)."""
    environment = dict(os.environ)
    # The scripts quiet TensorFlow's start-up lines unless the user set TF_CPP_MIN_LOG_LEVEL;
    # this checks the reader's lines, as a user who never set it sees them.
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)
    with tempfile.TemporaryDirectory(prefix="fuzz-inputs-cli-") as folder:
        path = case.write(folder)
        try:
            done = subprocess.run(command_of(case, path, folder), cwd=REPO_ROOT, env=environment,
                                  capture_output=True, text=True, timeout=seconds)
        except subprocess.TimeoutExpired:
            return f"no exit after {seconds} s", ""
        stderr = done.stderr.replace(folder, "TMP")  # the report names no machine's paths
    lines = stderr.splitlines()
    there = f"exit {done.returncode}" + (f", {' '.join(lines[0].split())[:160]}" if lines else "")
    read_exit = 2 if case.target in ("archive", "pickle") else 0  # 2: --train-size too large
    if "Traceback" in stderr:
        return "a traceback", there
    if case.outcome in ("read", "read changed"):
        if done.returncode != read_exit or (read_exit and "--train-size" not in stderr):
            return "read here, not there", there
        return None, there
    if done.returncode in (0, read_exit) or len(lines) != 1 or "error: " not in lines[0]:
        return f"refused here; there {len(lines)} lines on stderr", there
    return None, there


# ----------------------------------------------------------------------------- report

def cpu_model():
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        return next((line.split(":", 1)[1].strip() for line in handle
                     if line.startswith("model name")), "unknown CPU")


def counts_table(cases, key):
    """Rows of cases per (target, key(case)): read, read changed, refused, failed, slowest."""
    groups = {}
    for case in cases:
        groups.setdefault((case.target, key(case)), []).append(case)
    rows = ["| target | mutation | cases | read | read, bytes changed | refused | failed | "
            "slowest s |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (target, name), members in sorted(groups.items(), key=lambda item: (
            TARGETS.index(item[0][0]), item[0][1])):
        tally = {outcome: sum(case.outcome == outcome for case in members)
                 for outcome in ACCEPTED}
        failed = len(members) - sum(tally.values())
        rows.append(f"| {target} | {name} | {len(members)} | {tally['read']} | "
                    f"{tally['read changed']} | {tally['refused']} | {failed} | "
                    f"{max(case.seconds for case in members):.2f} |")
    return rows


def report(cases, fresh, command, seed):
    failures = [case for case in cases if case.outcome not in ACCEPTED]
    lines = [f"# Mutated inputs: {len(cases)} cases, {len(failures)} failures; "
             f"fresh processes: {len(fresh)} cases, "
             f"{sum(problem is not None for _, (problem, _) in fresh)} failures",
             "",
             f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
             f"command: {command}",
             f"commit: {_git_commit()}",
             f"CPU: {cpu_model()} ({os.cpu_count()} cores)",
             f"Python {sys.version.split()[0]}, numpy {np.__version__}, "
             f"matplotlib {figures.matplotlib.__version__}; seed {seed}",
             "",
             "read: the data as written; read, bytes changed: bytes that no checksum covers "
             "(pixels, labels, a JSON value) were changed and read as they are; refused: the "
             "project's one-line error and a non-zero exit. Anything else is a failure.",
             "",
             "## Per target", ""]
    lines += counts_table(cases, key=lambda case: "all")
    lines += ["", "## Per target and mutation", ""]
    lines += counts_table(cases, key=lambda case: case.kind)
    lines += ["", "## Failures", ""]
    lines += [f"- {case.name} ({case.kind}, {case.detail}): {case.outcome}: "
              + " ".join((case.message.splitlines() or [""])[0].split())[:300]
              for case in failures] or ["none"]
    warned = [case for case in cases if case.warnings and case.outcome in ACCEPTED]
    lines += ["", f"Reads that printed warnings (not failures): {len(warned)}"]
    lines += [f"- {case.name} ({case.kind}): {case.outcome}: {case.warnings[0][:200]}"
              for case in warned[:10]]
    lines += ["", "## The same cases through the real commands, fresh processes", ""]
    lines += [f"- {case.name} ({case.kind}): here {case.outcome}; there "
              + (f"the same: {there}" if problem is None else f"FAILED: {problem}")
              for case, (problem, there) in fresh] or ["none run"]
    return "\n".join(lines) + "\n"


def _git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=CASES, help="cases per target")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated, of {', '.join(TARGETS)}")
    parser.add_argument("--case-seconds", type=int, default=CASE_SECONDS,
                        help="a case that takes longer is a hang")
    parser.add_argument("--cli-sample", type=int, default=CLI_SAMPLE,
                        help="cases per target rerun through the real command")
    parser.add_argument("--case", metavar="TARGET:N",
                        help="run one case and print what happened, with its traceback")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, OUT),
                        help=f"the report (default: {OUT})")
    args = parser.parse_args(argv)
    if args.case:
        target, number = args.case.split(":")
        case, = run_cases([target], 1, args.seed, args.case_seconds, only=int(number))
        print(f"{case.name} ({case.kind}, {case.detail}): {case.outcome} in "
              f"{case.seconds:.2f} s\n{case.message}")
        return 0 if case.outcome in ACCEPTED else 1
    targets = [target for target in args.targets.split(",") if target]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {', '.join(unknown)}")
    started = time.perf_counter()
    cases = run_cases(targets, args.cases, args.seed, args.case_seconds)
    print(f"{len(cases)} cases in {time.perf_counter() - started:.0f} s", flush=True)
    sample_rng = np.random.default_rng([args.seed, 1])
    fresh = []
    for target in targets:
        mine = [case for case in cases if case.target == target]
        for index in sample_rng.choice(len(mine), min(args.cli_sample, len(mine)), replace=False):
            fresh.append((mine[index], run_fresh(mine[index])))
    command = "python bench/fuzz_inputs.py " + " ".join(
        shlex.quote(arg) for arg in (sys.argv[1:] if argv is None else argv))
    text = report(cases, fresh, command.strip(), args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(text)
    failed = any(case.outcome not in ACCEPTED for case in cases) or \
        any(problem is not None for _, (problem, _) in fresh)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
