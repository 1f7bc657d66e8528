"""Kills at random: runs of a small configuration, each killed one or more times (SIGKILL, SIGTERM
or SIGINT) at a random moment and started again with the same command until it finishes; every
finished run must equal an uninterrupted reference of the same command and have all its outputs.

    python bench/soak.py                     # 40 runs, 1-3 kills each, seed 26
    python bench/soak.py --runs 2 --max-kills 1 --out /tmp/soak.txt   # a quick look

Each run is `label_smoothing_loss.py` on a tiny CIFAR-10 that this script writes (random images,
160 train / 40 val / 30 test, batch 32, a few epochs), the default recipe and fast in turn.
Before each kill the kind and a target are drawn from a generator seeded --seed:
  epoch          a random time into the attempt's training
  backup write   the moment a temporary file appears in the backup folder (epoch_NNNN being
                 written), at a random one of the epochs still to train
  output writes  a random time into the writing of the JSON, report, figures and model, which
                 starts when the classification report is printed
  any            a random time since the attempt started (start-up and evaluation included)
The phase a kill is counted under is what this script saw at its last look before the signal
(it looks every few milliseconds): the stdout lines so far (Keras' "Epoch k/E" at an epoch's
start, "epoch k/E took" after its backup, the report before the outputs) and the backup folder's
temporaries. A write can end in the milliseconds between the look and the signal; a SIGKILL that
leaves the temporary behind proves that it cut the write, and those are counted apart. A kill
seen after the report with the backup already removed lands "after the outputs": the run was
complete (every output written), and its rerun is a new run, not a resume; so does one seen in the
output writes when, once the attempt has exited, its backup is gone and every output is its own
(the last write ended between the look and the signal).
SIGINT is sent again every few seconds until the process stops, as a user presses Ctrl-C again
(Python acts on it between bytecodes, and a library call can be long).

A finished run equals its reference when its JSON's numbers (history without 'seconds', test
metrics before and after temperature scaling, the temperature, the reliability bins), its report,
its history CSV (every epoch once) and its saved model's logits on fixed images are the same, bit
for bit. Its outputs are all there (JSON, report, plot, calibration figure, .keras, history CSV)
and nothing is left over (lock, backup, temporaries). Each rerun must resume from the epoch the
backup holds: an epoch the killed attempt had backed up and the rerun trains again is lost. An
attempt stopped in its start-up, before it shows whether it resumes, is not judged on that (it
trained nothing); the rerun after it is. An attempt with a traceback on stderr fails the soak.
Figures go to --out with the date, the command, the CPU and the commit.
"""
import argparse
import collections
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from pyimagesearch import cifar10  # noqa: E402  (numpy alone: the runs load the backend)
from pyimagesearch.recipes import DEFAULT_RECIPE  # noqa: E402

# ----------------------------------------------------------------------------- settings
RUNS = 40               # 1-3 kills drawn each, some landing after their attempt has ended: enough
                        # for 50 or more delivered
MAX_KILLS = 3           # kills per run, drawn from 1..MAX_KILLS
SEED = 26               # fixed, so that a rerun draws the same kinds and targets
EPOCHS = 4              # enough for a resumed attempt to have epochs left to be killed in
# the default (airbench-style: whitened stem, alternating flips, a stem bias frozen mid-run) and
# the 14-epoch one (random flips); both with lookahead
RECIPES = (DEFAULT_RECIPE, "fast")
# the runs' own choice: bfloat16 where the CPU runs it fast (where runs once did not repeat),
# float32 where bfloat16 would be emulated, many times slower
PRECISION = "auto"
OUT = os.path.join("results", "reliability", "soak.txt")  # under the checkout
TARGETS = ("epoch", "backup write", "output writes", "any")
KINDS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
PHASES = ("start-up", "epoch", "backup write", "evaluation", "output writes",
          "after the outputs")
LOOK_SECONDS = 0.002    # between looks at the run's stdout and backup folder
INTERRUPT_AGAIN_SECONDS = 3  # Ctrl-C pressed again while the run has not stopped
STOP_SECONDS = 180      # a killed run that has not exited by then is a failure
ATTEMPT_SECONDS = 900   # an attempt that runs longer is a stall
EXTRA_ATTEMPTS = 3      # reruns allowed beyond one per kill before a run counts as unfinished
OUTPUT_SUFFIXES = (".json", "_report.txt", ".png", "_calibration.png", ".keras", "_history.csv")
PROBE_IMAGES = 16       # fixed images the saved models predict


def run_arguments(dataset, plot, recipe, epochs, precision):
    return ["--dataset", dataset, "--plot", plot, "--batch-size", "32", "--train-size", "200",
            "--val-size", "40", "--test-size", "30", "--precision", precision, "--recipe",
            recipe, "--epochs", str(epochs), "--seed", "5"]


class Attempt:
    """One start of the run's command: its stdout and stderr read as they come, its backup
    folder looked at on demand, so that the phase it is in can be told."""

    def __init__(self, arguments, plot):
        stem = os.path.splitext(plot)[0]
        self.backup = f"{stem}_backup"
        self.old_temporaries = self._temporaries()  # left by an earlier attempt's SIGKILL
        self.started = time.time()
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
        # A shell starts background jobs with SIGINT ignored, and Python then keeps ignoring
        # it: the run gets the default disposition, so that a SIGINT is Ctrl-C.
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(REPO_ROOT, "label_smoothing_loss.py"), *arguments],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.out, self.err = [], []
        self.readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                        for stream, lines in ((self.process.stdout, self.out),
                                              (self.process.stderr, self.err))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, lines):
        for line in stream:
            lines.append(line.rstrip("\n"))

    def _temporaries(self):
        try:
            return {name for name in os.listdir(self.backup) if name.startswith(".")}
        except FileNotFoundError:
            return set()

    def new_temporaries(self):
        return self._temporaries() - self.old_temporaries

    def alive(self):
        return self.process.poll() is None

    def said_how_it_starts(self):
        """Whether the attempt got far enough to show if it resumes: the "resuming from" line
        comes before the first epoch, and a fresh run's first sign is Keras' "Epoch 1/E"."""
        return any(line.startswith(("resuming from ", "Epoch ")) for line in list(self.out)) \
            or self.report_seen()

    def resumed_from(self):
        """Epochs the attempt said it resumed from (0: it started afresh)."""
        for line in list(self.out):
            if line.startswith("resuming from "):
                return int(line.split(": ", 1)[1].split()[0])
        return 0

    def epochs_started(self):
        return [line for line in list(self.out) if line.startswith("Epoch ")]

    def epochs_ended(self):
        """The last epoch whose "epoch k/E took" line (printed after its backup) was seen."""
        ended = [int(line.split()[1].split("/")[0]) for line in list(self.out)
                 if line.startswith("epoch ") and " took " in line]
        return max(ended, default=self.resumed_from())

    def report_seen(self):
        return any(line.lstrip().startswith("precision") and "recall" in line
                   for line in list(self.out))

    def phase(self, epochs):
        """What the attempt is doing now, as far as its stdout and backup folder tell."""
        if self.report_seen():
            # the backup is removed once every output is written: then the run is complete
            return "output writes" if os.path.isdir(self.backup) else "after the outputs"
        if self.new_temporaries():
            return "backup write"
        if self.epochs_ended() >= epochs:
            return "evaluation"
        if self.epochs_started():
            return "epoch"
        return "start-up"

    def finish(self, timeout):
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False
        for reader in self.readers:
            reader.join(timeout=30)
        return True


def wait_until(attempt, condition, seconds=ATTEMPT_SECONDS):
    """True once `condition()` holds while the attempt runs; False if it ends first."""
    deadline = time.time() + seconds
    while attempt.alive() and time.time() < deadline:
        if condition():
            return True
        time.sleep(LOOK_SECONDS)
    return False


def sleep_watching(attempt, seconds, epochs):
    """Sleep while the attempt runs; returns the phase seen at the last look."""
    end, phase = time.time() + seconds, attempt.phase(epochs)
    while attempt.alive() and time.time() < end:
        phase = attempt.phase(epochs)
        time.sleep(LOOK_SECONDS)
    return phase


def reach_target(attempt, target, rng, timing, epochs):
    """Wait for the drawn moment; the phase seen at the last look, or None if the attempt ended
    before it."""
    left = epochs - attempt.resumed_from()
    if target == "backup write":
        # one of the epochs still to train: the first backup temporary of its save
        skip = int(rng.integers(0, max(left, 1)))
        seen = set()

        def writing_the_chosen_one():
            for name in attempt.new_temporaries():
                seen.add(name.split(".")[1])  # epoch_NNNN
            return len(seen) > skip
        if not wait_until(attempt, writing_the_chosen_one):
            return None
        return sleep_watching(attempt, float(rng.uniform(0, 0.02)), epochs)
    if target == "output writes":
        if not wait_until(attempt, attempt.report_seen):
            return None
        return sleep_watching(attempt, float(rng.uniform(0, timing["writing"])), epochs)
    if target == "epoch":
        if not wait_until(attempt, lambda: attempt.epochs_started() or attempt.report_seen()):
            return None
        training = timing["first_epoch"] + max(left - 1, 0) * timing["later_epoch"]
        return sleep_watching(attempt, float(rng.uniform(0, training)), epochs)
    return sleep_watching(attempt, float(rng.uniform(0, timing["wall"])), epochs)


def deliver(attempt, kind):
    """Send the signal (SIGINT again every few seconds); the exit code, or None if the run did
    not stop."""
    attempt.process.send_signal(KINDS[kind])
    deadline = time.time() + STOP_SECONDS
    while attempt.alive() and time.time() < deadline:
        time.sleep(INTERRUPT_AGAIN_SECONDS if kind == "SIGINT" else 0.05)
        if kind == "SIGINT" and attempt.alive():
            attempt.process.send_signal(signal.SIGINT)
    if not attempt.finish(timeout=1):
        return None
    return attempt.process.returncode


def run_complete(attempt, stem):
    """Whether the attempt had finished the run: its backup removed (which comes last) and every
    output of the writes written by it (the history CSV is written in training, which a rerun
    resumed after the last epoch skips)."""
    return not os.path.isdir(attempt.backup) and os.path.exists(stem + "_history.csv") and all(
        os.path.exists(stem + suffix) and os.path.getmtime(stem + suffix) >= attempt.started
        for suffix in OUTPUT_SUFFIXES if suffix != "_history.csv")


def backed_up_epochs(backup):
    try:
        with open(os.path.join(backup, "state.json"), encoding="utf-8") as handle:
            return int(json.load(handle)["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def outcome(plot, images):
    """Everything a finished run computed (no timings, dates or paths) and its outputs' state."""
    import logging

    import keras

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes, one a model
    stem = os.path.splitext(plot)[0]
    with open(f"{stem}.json", encoding="utf-8") as handle:
        result = json.load(handle)
    numbers = {key: result.get(key) for key in (
        "test_metrics", "test_metrics_temperature_scaled", "temperature", "one_view",
        "reliability_bins", "epochs_completed", "diverged")}
    numbers["history"] = {key: values for key, values in result["history"].items()
                          if key != "seconds"}
    with open(f"{stem}_report.txt", encoding="utf-8") as handle:
        numbers["report"] = handle.read()
    with open(f"{stem}_history.csv", encoding="utf-8") as handle:
        rows = [row.split(",") for row in handle.read().splitlines()]
    keep = [index for index, column in enumerate(rows[0]) if column != "seconds"]
    numbers["history_csv"] = [[row[index] for index in keep] for row in rows]
    logits = np.asarray(keras.saving.load_model(f"{stem}.keras").predict(images, verbose=0))
    return numbers, logits


def outputs_state(plot):
    """(outputs missing or empty, things left over) of a finished run."""
    stem = os.path.splitext(plot)[0]
    missing = [stem + suffix for suffix in OUTPUT_SUFFIXES
               if not os.path.isfile(stem + suffix) or not os.path.getsize(stem + suffix)]
    folder = os.path.dirname(plot)
    left = [path for path in (f"{stem}.lock", f"{stem}_backup") if os.path.exists(path)]
    left += [os.path.join(folder, name) for name in os.listdir(folder) if name.startswith(".")]
    return missing, left


def same(first, second):
    return first[0] == second[0] and np.array_equal(first[1], second[1])


def reference(dataset, work, recipe, epochs, precision, images):
    """The uninterrupted run of the command: its outcome and the timings kills are drawn in."""
    plot = os.path.join(work, f"reference_{recipe}", "run.png")
    attempt = Attempt(run_arguments(dataset, plot, recipe, epochs, precision), plot)
    if not attempt.finish(ATTEMPT_SECONDS) or attempt.process.returncode != 0:
        sys.exit(f"soak: the reference run ({recipe}) failed:\n" + "\n".join(attempt.err[-20:]))
    wall = time.time() - attempt.started
    missing, left = outputs_state(plot)
    if missing or left:
        sys.exit(f"soak: the reference run ({recipe}) lacks {missing} or left {left}")
    with open(os.path.splitext(plot)[0] + ".json", encoding="utf-8") as handle:
        result = json.load(handle)
    seconds = result["history"]["seconds"]
    timing = {"wall": wall, "writing": result["phases"]["writing"], "first_epoch": seconds[0],
              "later_epoch": float(np.median(seconds[1:] or seconds))}
    return outcome(plot, images), timing


def soak_run(number, recipe, dataset, work, epochs, precision, rng, max_kills, timing,
             expected, images):
    """One run: killed 1..max_kills times, each rerun with the same command, until it finishes.
    Returns its record."""
    plot = os.path.join(work, f"run_{number:03d}", "run.png")
    stem = os.path.splitext(plot)[0]
    arguments = run_arguments(dataset, plot, recipe, epochs, precision)
    wanted = int(rng.integers(1, max_kills + 1))
    record = {"run": number, "recipe": recipe, "kills": [], "undelivered": 0, "attempts": 0,
              "finished": False, "equal": False, "missing": [], "left": [], "failures": [],
              "epochs_lost": 0, "wrong_resumes": 0, "undecided": 0, "tracebacks": []}
    backed_up = ended = 0  # what the backup held, and the epochs seen done, when the last ended
    while not record["finished"] and record["attempts"] < wanted + 1 + EXTRA_ATTEMPTS:
        record["attempts"] += 1
        attempt = Attempt(arguments, plot)
        phase = None
        if len(record["kills"]) < wanted:
            kind, target = str(rng.choice(list(KINDS))), str(rng.choice(TARGETS))
            phase = reach_target(attempt, target, rng, timing, epochs)
            if phase is None or not attempt.alive():  # it finished first
                phase = None
                record["undelivered"] += 1
        if phase is not None:
            writing = attempt.new_temporaries()
            code = deliver(attempt, kind)
            kill = {"kind": kind, "target": target, "phase": phase, "exit": code}
            if phase == "backup write" and kind == "SIGKILL":
                kill["cut_write"] = bool(writing & attempt.new_temporaries())
            if phase == "output writes" and run_complete(attempt, stem):
                # the last write ended between the look and the signal: the run had finished
                phase = kill["phase"] = "after the outputs"
                kill["landed_late"] = True
            if phase == "output writes":
                kill["outputs_written"] = sum(
                    os.path.exists(stem + suffix)
                    and os.path.getmtime(stem + suffix) >= attempt.started
                    for suffix in OUTPUT_SUFFIXES if suffix != "_history.csv")
            record["kills"].append(kill)
            if code is None:
                record["failures"].append(f"attempt {record['attempts']}: {kind} did not stop it")
        elif not attempt.finish(ATTEMPT_SECONDS):
            record["failures"].append(f"attempt {record['attempts']}: stalled")
        if any("Traceback" in line for line in attempt.err):
            record["tracebacks"].append(
                f"attempt {record['attempts']}"
                + (f" ({kind} in {phase})" if phase is not None else "") + ": "
                + " / ".join(line.strip() for line in attempt.err[-3:]))
        if attempt.said_how_it_starts():
            resumed = attempt.resumed_from()
            if record["attempts"] > 1:  # a rerun resumes from what the backup held
                record["wrong_resumes"] += resumed != backed_up
                record["epochs_lost"] += max(ended - resumed, 0)
            ended = attempt.epochs_ended()
        else:  # stopped in its start-up: it trained nothing, and the next rerun is judged
            record["undecided"] += 1
        backed_up = backed_up_epochs(attempt.backup)
        if phase == "after the outputs":  # the run was complete: its rerun is a new run
            ended = 0
        if phase is None:
            if attempt.process.returncode == 0:
                record["finished"] = True
            else:
                record["failures"].append(
                    f"attempt {record['attempts']}: exit {attempt.process.returncode}: "
                    + (attempt.err[-1] if attempt.err else ""))
    if record["finished"]:
        record["missing"], record["left"] = outputs_state(plot)
        if not record["missing"]:
            record["equal"] = same(outcome(plot, images), expected)
    return record


def describe(record):
    kills = ", ".join(f"{kill['kind']} in {kill['phase']}" for kill in record["kills"])
    verdict = ("equal" if record["equal"] else "NOT EQUAL") if record["finished"] \
        else "NOT FINISHED"
    extra = "".join(f"; {name} {record[name]}" for name in ("missing", "left", "failures")
                    if record[name])
    if record["epochs_lost"] or record["wrong_resumes"]:
        extra += (f"; epochs lost {record['epochs_lost']}, wrong resumes "
                  f"{record['wrong_resumes']}")
    return (f"run {record['run']:3d} {record['recipe']:<10} {record['attempts']} attempts, "
            f"kills: {kills or 'none delivered'} -> {verdict}{extra}")


def cpu_model():
    """'AMD EPYC, family 25 model 1, 2 CPUs': the model name alone may not say which CPU."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "cpu family", "model"):
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name", platform.processor() or platform.machine())
    family = (f", family {fields['cpu family']} model {fields['model']}"
              if "cpu family" in fields and "model" in fields else "")
    return f"{name}{family}, {os.cpu_count()} CPUs"


def commit():
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True,
                              text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
               if line]
    return head + (f" (with uncommitted changes to {len(changed)} files)" if changed else "")


def summary(records, args, started, seconds):
    kills = [kill for record in records for kill in record["kills"]]
    lines = [
        "# Kills at random (bench/soak.py)",
        "",
        f"date: {started}, {seconds / 60:.0f} min",
        f"command: python bench/soak.py {' '.join(shlex.quote(a) for a in args.argv)}".rstrip(),
        "each run: python label_smoothing_loss.py " + " ".join(run_arguments(
            "<tiny>", "<run>/run.png", "<recipe>", args.epochs, args.precision)),
        f"  the recipes {' and '.join(RECIPES)} in turn; <tiny>: random images this script "
        "writes; the reference of each recipe is the same command, uninterrupted",
        f"CPU: {cpu_model()}",
        f"commit: {commit()}",
        f"backend: {os.environ.get('KERAS_BACKEND', 'tensorflow')}",
        "",
        f"kills delivered: {len(kills)} (drawn but not delivered, the attempt having finished "
        f"first: {sum(record['undelivered'] for record in records)})",
        "",
        "| phase (seen at the last look before the signal) | " + " | ".join(KINDS) + " | all |",
        "| --- | " + " | ".join("---" for _ in KINDS) + " | --- |",
    ]
    table = collections.Counter((kill["phase"], kill["kind"]) for kill in kills)
    for phase in PHASES:
        counts = [table[phase, kind] for kind in KINDS]
        lines.append(f"| {phase} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    cut = [kill for kill in kills if "cut_write" in kill]
    late = sum(kill.get("landed_late", False) for kill in kills)
    written = collections.Counter(kill["outputs_written"] for kill in kills
                                  if "outputs_written" in kill)
    exits = collections.Counter((kill["kind"], kill["exit"]) for kill in kills)
    lines += [
        "",
        f"SIGKILLs seen in a backup write that left its temporary behind (the write was cut): "
        f"{sum(kill['cut_write'] for kill in cut)} of {len(cut)}",
        f"kills seen in the output writes that landed after the last (the backup was gone, "
        f"every output written; counted after the outputs): {late}",
        "kills in the output writes, by how many of the 5 outputs this attempt had written: "
        + (", ".join(f"{count} written: {written[count]}" for count in sorted(written))
           or "none"),
        "exit codes: " + ", ".join(f"{kind} {code}: {count}" for (kind, code), count
                                   in sorted(exits.items(), key=str)),
        "",
        f"runs: {len(records)}",
        f"runs finished: {sum(record['finished'] for record in records)}",
        f"runs equal to the reference: {sum(record['equal'] for record in records)}",
        f"runs with outputs lost: {sum(bool(record['missing']) for record in records)}",
        f"runs with a lock, backup or temporary left over: "
        f"{sum(bool(record['left']) for record in records)}",
        f"reruns that did not resume from the epoch the backup held: "
        f"{sum(record['wrong_resumes'] for record in records)}",
        f"epochs trained again (backed up before a kill, not resumed): "
        f"{sum(record['epochs_lost'] for record in records)}",
        f"attempts that failed on their own (a resume refused, a crash, a stall): "
        f"{sum(len(record['failures']) for record in records)}",
        f"attempts stopped before they showed whether they resume (not judged on it): "
        f"{sum(record['undecided'] for record in records)}",
        f"attempts with a traceback on stderr: "
        f"{sum(len(record['tracebacks']) for record in records)}",
        f"attempts in all: {sum(record['attempts'] for record in records)}",
        "",
        "## Each run",
        "",
        *[describe(record) for record in records],
    ]
    tracebacks = [f"run {record['run']} {line}" for record in records
                  for line in record["tracebacks"]]
    if tracebacks:
        lines += ["", "## Tracebacks (the last 3 lines of stderr)", "", *tracebacks]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS,
                        help="runs to kill (default: %(default)s)")
    parser.add_argument("--max-kills", type=int, default=MAX_KILLS,
                        help="kills per run are drawn from 1 .. this (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=SEED, help="(default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="(default: %(default)s)")
    parser.add_argument("--precision", default=PRECISION, choices=("auto", "bfloat16", "float32"),
                        help="(default: %(default)s)")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, OUT),
                        help="figures (default: results/reliability/soak.txt in the checkout)")
    parser.add_argument("--work", help="folder for the runs (default: a temporary one, removed)")
    parser.add_argument("--keep", action="store_true", help="keep each run's outputs")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.runs < 1 or args.max_kills < 1 or args.epochs < 2:
        parser.error("--runs and --max-kills must be positive, --epochs at least 2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before Keras loads, in outcome()

    work = args.work or tempfile.mkdtemp(prefix="soak-")
    os.makedirs(work, exist_ok=True)
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    clock = time.time()

    def log(line):
        print(line, flush=True)

    try:
        dataset = cifar10.write_random_folder(os.path.join(work, "data"))
        images = np.random.default_rng(0).integers(0, 256, (PROBE_IMAGES, 32, 32, 3),
                                                   dtype=np.uint8)
        references = {}
        for recipe in RECIPES:
            references[recipe] = reference(dataset, work, recipe, args.epochs, args.precision,
                                           images)
            log(f"reference {recipe}: {references[recipe][1]}")
        rng = np.random.default_rng(args.seed)
        records = []
        for number in range(1, args.runs + 1):
            recipe = RECIPES[(number - 1) % len(RECIPES)]
            expected, timing = references[recipe]
            records.append(soak_run(number, recipe, dataset, work, args.epochs, args.precision,
                                    rng, args.max_kills, timing, expected, images))
            log(describe(records[-1]))
            if not args.keep:
                shutil.rmtree(os.path.join(work, f"run_{number:03d}"), ignore_errors=True)
    finally:
        if not args.work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = summary(records, args, started, time.time() - clock)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(text, end="")
    good = all(record["finished"] and record["equal"] and not record["left"]
               and not record["failures"] and not record["wrong_resumes"]
               and not record["epochs_lost"] and not record["tracebacks"]
               for record in records)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
