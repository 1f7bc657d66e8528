"""A run's settings, resolved once: the command-line flags merged with the recipe and checked
here, before any data is loaded or any backend imported. What can only be checked against the
data is checked beside the loader (`cifar10.check_sizes`); what needs the devices, by
`placement`.

Nothing here imports Keras, so `--help` and every usage error come back at once.
"""
import dataclasses
import hashlib
import importlib.util
import os
import shlex
import types
from typing import Callable

from pyimagesearch import cifar10
from pyimagesearch.errors import UsageError
from pyimagesearch.recipes import FLAG_OVERRIDES, RECIPES

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
DATA_PARALLEL_MODES = ("auto", "on", "off")
JIT_COMPILE_MODES = {"auto": "auto", "on": True, "off": False}  # flag -> Keras' jit_compile
PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
# Distillation's defaults, taken when --teacher is given (distillation.py has the loss).
# T = 4 softens a confident teacher enough to show which wrong classes it finds likely: Hinton,
# Vinyals & Dean found 2.5 to 4 best for their smallest student, higher T for larger ones.
# lambda = 0.5 weighs the soft term (T^2-scaled, so that its gradients keep the hard term's size
# at any T) and the labels equally. Hinton et al. put less weight on the labels; here the study
# asks whether a smoothed teacher teaches worse, and an even split keeps a poor teacher from
# pulling the student off its labels while its share of the loss stays large enough to show.
DISTILL_TEMPERATURE = 4.0
DISTILL_WEIGHT = 0.5
# The distillation settings: none of them without a teacher.
DISTILLATION = ("teacher", "teacher_sha256", "distill_temperature", "distill_weight")
# Settings that do not change what a run computes: a run resumed with other values of these is
# still the same run (the backup's identity leaves them out).
NOT_IDENTITY = ("debug", "precision", "process_id", "coordinator", "compile_cache",
                "tensorboard", "repeatable")


@dataclasses.dataclass(frozen=True)
class Method:
    """Where smoothing happens: the only thing the two scripts do differently.
    `prepare(one_hot, smoothing)` returns the training targets and the Keras loss to train them
    with; the model outputs logits."""

    name: str
    summary: str
    prepare: Callable


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every setting a run uses. `recipe` is the named recipe with the flags' overrides applied
    (read-only); the other fields are the flags as given or defaulted (`jit_compile` as Keras
    takes it: "auto", True or False; `teacher` as an absolute path, with `teacher_sha256` the
    digest of its file, so that a run names the very teacher it learnt from; the distillation
    fields are None without a teacher)."""

    method: str
    smoothing: float
    plot: str
    dataset: str | None
    recipe_name: str
    recipe: types.MappingProxyType
    seed: int
    train_size: int | None
    test_size: int | None
    val_size: int | None
    teacher: str | None
    teacher_sha256: str | None
    distill_temperature: float | None
    distill_weight: float | None
    precision: str
    data_parallel: str
    num_processes: int
    process_id: int
    coordinator: str | None
    steps_per_execution: int
    jit_compile: str
    repeatable: bool
    compile_cache: str | None
    tensorboard: str | None
    debug: bool
    argv: tuple

    @property
    def script(self):
        return f"label_smoothing_{self.method}.py"

    @property
    def command(self):
        """The command that made this run, as a user would type it."""
        return shlex.join(["python", self.script, *self.argv])

    @property
    def paths(self):
        """Where the run writes, all beside `plot`: {'plot', 'report', 'json', 'calibration',
        'model', 'history_csv', 'backup', 'lock'}."""
        stem, _ = os.path.splitext(self.plot)
        return {"plot": self.plot, "report": f"{stem}_report.txt", "json": f"{stem}.json",
                "calibration": f"{stem}_calibration.png", "model": f"{stem}.keras",
                "history_csv": f"{stem}_history.csv", "backup": f"{stem}_backup",
                "lock": f"{stem}.lock"}

    @property
    def writes(self):
        """Whether this process writes the outputs: the only one, or process 0 of several."""
        return self.process_id == 0

    def args(self):
        """The flags as resolved, for the JSON (`args`): the recipe's name and its overridden
        entries under their flag names."""
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                  if field.name not in ("method", "recipe", "recipe_name", "argv")}
        return {"recipe": self.recipe_name, **{key: self.recipe[key] for key in FLAG_OVERRIDES},
                **fields}

    def identity(self):
        """What a resumed run must repeat exactly; a backup records it. A run without a teacher
        leaves the distillation settings out, so that its identity is what it was before they
        existed and older backups still resume."""
        left_out = NOT_IDENTITY + (DISTILLATION if self.teacher is None else ())
        return {"method": self.method, **{key: value for key, value in self.args().items()
                                          if key not in left_out}}


def default_compile_cache():
    """The folder for JAX's compiled programs: JAX's own $JAX_COMPILATION_CACHE_DIR if set, else
    a per-user one, following XDG_CACHE_HOME."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "label-smoothing-keras", "jax")


def resolve(method, flags, argv):
    """The RunConfig of `method` ('func' or 'loss') from argparse's `flags`; a UsageError names
    the first bad setting."""
    overrides = {key: getattr(flags, key) for key in FLAG_OVERRIDES
                 if getattr(flags, key) is not None}
    recipe = dict(RECIPES[flags.recipe], **overrides)
    teacher = _resolve_teacher(flags)
    config = RunConfig(
        method=method, smoothing=flags.smoothing, plot=flags.plot, dataset=flags.dataset,
        recipe_name=flags.recipe, recipe=types.MappingProxyType(recipe), seed=flags.seed,
        train_size=flags.train_size, test_size=flags.test_size, val_size=flags.val_size,
        **teacher, precision=flags.precision, data_parallel=flags.data_parallel,
        num_processes=flags.num_processes, process_id=flags.process_id,
        coordinator=flags.coordinator, steps_per_execution=flags.steps_per_execution,
        jit_compile=JIT_COMPILE_MODES[flags.jit_compile], repeatable=flags.repeatable == "on",
        compile_cache=None if flags.compile_cache == "off" else flags.compile_cache,
        tensorboard=flags.tensorboard, debug=flags.debug, argv=tuple(argv))
    check(config)
    return config


def _resolve_teacher(flags):
    """The distillation fields of RunConfig from the flags: all None without --teacher, else the
    teacher's absolute path and digest and T and lambda, defaulted. UsageError for a teacher
    file that is not there, or for T or lambda given without a teacher."""
    if flags.teacher is None:
        for flag in ("distill_temperature", "distill_weight"):
            if getattr(flags, flag) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} needs --teacher PATH.keras")
        return dict.fromkeys(DISTILLATION)
    teacher = os.path.abspath(flags.teacher)
    if not os.path.isfile(teacher):
        raise UsageError(f"--teacher {flags.teacher}: no such file")
    if not teacher.endswith(".keras"):
        raise UsageError(f"--teacher {flags.teacher}: not a .keras file (give the <stem>.keras "
                         "a run of either script wrote)")
    return {"teacher": teacher, "teacher_sha256": _file_digest(teacher),
            "distill_temperature": DISTILL_TEMPERATURE if flags.distill_temperature is None
            else flags.distill_temperature,
            "distill_weight": DISTILL_WEIGHT if flags.distill_weight is None
            else flags.distill_weight}


def _file_digest(path):
    """The SHA-256 of the file at `path`, hex; UsageError if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise UsageError(f"--teacher {path}: cannot read ({error.strerror})") from None
    return digest.hexdigest()


def check(config):
    """Every check that needs only the settings."""
    recipe = config.recipe
    if not 0.0 <= config.smoothing < 1.0:
        raise UsageError(f"--smoothing must be in [0, 1), got {config.smoothing}")
    for flag, value in (("epochs", recipe["epochs"]), ("batch_size", recipe["batch_size"]),
                        ("steps_per_execution", config.steps_per_execution),
                        ("num_processes", config.num_processes)):
        if value is not None and value <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if not recipe["lr"] > 0 or recipe["lr"] == float("inf"):
        raise UsageError(f"--lr must be a positive number, got {recipe['lr']}")
    if not recipe["weight_decay"] >= 0 or recipe["weight_decay"] == float("inf"):
        raise UsageError(f"--weight-decay must be a number >= 0, got {recipe['weight_decay']}")
    cifar10.check_sizes(config.train_size, config.val_size, config.test_size)  # the split's
    _check_processes(config)
    if config.dataset is not None and not os.path.exists(config.dataset):
        raise UsageError(f"--dataset {config.dataset}: no such file or folder")
    _check_plot_path(config.plot)
    _check_distillation(config)
    if config.tensorboard is not None and importlib.util.find_spec("tensorboard") is None:
        raise UsageError(f"--tensorboard {config.tensorboard}: needs the tensorboard package "
                         "(pip install tensorboard)")


def _check_distillation(config):
    """T > 0, lambda in [0, 1], and a recipe that shows the student each training image as the
    teacher saw it: the teacher's logits are computed once, on the unaugmented images."""
    if config.teacher is None:
        return
    temperature, weight = config.distill_temperature, config.distill_weight
    if not 0 < temperature < float("inf"):
        raise UsageError(f"--distill-temperature must be a positive number, got {temperature}")
    if not 0 <= weight <= 1:
        raise UsageError(f"--distill-weight must be in [0, 1], got {weight}")
    recipe = config.recipe
    if recipe["max_shift"] or recipe["flip"]:
        raise UsageError(f"--teacher needs a recipe without augmentation: recipe "
                         f"{config.recipe_name} shifts or flips the training images, and the "
                         "teacher's logits, computed once on the unaugmented images, would not "
                         "match what the student sees (use e.g. --recipe overfit_small)")
    if config.teacher == os.path.abspath(config.paths["model"]):
        raise UsageError(f"--teacher {config.teacher} is the model this run writes; give the "
                         "student another --plot")


def _check_processes(config):
    if not 0 <= config.process_id < config.num_processes:
        raise UsageError(f"--process-id must be in 0 .. {config.num_processes - 1} for "
                         f"--num-processes {config.num_processes}, got {config.process_id}")
    if config.num_processes == 1:
        return
    if not config.coordinator:
        raise UsageError("--num-processes > 1 needs --coordinator HOST:PORT (process 0's "
                         "address) or $KERAS_DISTRIBUTION_JOB_ADDRESSES")
    if config.recipe["batch_size"] % config.num_processes:
        raise UsageError(f"--batch-size {config.recipe['batch_size']} must divide evenly "
                         f"between the {config.num_processes} processes")


def _check_plot_path(plot):
    if os.path.splitext(plot)[1].lower() not in PLOT_FORMATS:
        raise UsageError(f"--plot {plot}: use one of the extensions {', '.join(PLOT_FORMATS)}")
    folder = os.path.dirname(os.path.abspath(plot))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--plot {plot}: cannot create folder {folder} ({error.strerror})") \
            from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--plot {plot}: folder {folder} is not writable")
