"""Knowledge distillation (pyimagesearch/distillation.py, the --teacher flags): the loss against
numpy, its gradient through Keras' own training step, the teacher's logits from a saved model,
the flags' checks in a fresh process, and the teacher in the backup's identity."""
import hashlib
import json
import math
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import label_smoothing_func
import label_smoothing_loss
from conftest import tiny_argv, wait_for_backed_up_epochs
from pyimagesearch import backup, cli, distillation, model, recipes, resnet
from pyimagesearch.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K = 10


def softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def numpy_kl(teacher, student, temperature):
    """KL(softmax(teacher / T) ‖ softmax(student / T)) per row, float64, from the definition."""
    p = softmax(np.asarray(teacher, np.float64) / temperature)
    q = softmax(np.asarray(student, np.float64) / temperature)
    return (p * np.log(p / q)).sum(axis=-1)


def numpy_cross_entropy(one_hot, logits, smoothing=0.0):
    targets = one_hot * (1 - smoothing) + smoothing / one_hot.shape[-1]
    return -(targets * np.log(softmax(np.asarray(logits, np.float64)))).sum(axis=-1)


def term(teacher, student, temperature):
    return keras.ops.convert_to_numpy(distillation.distillation_term(
        np.asarray(teacher, np.float32), np.asarray(student, np.float32), temperature))


def random_problem(seed=0, rows=16, scale=3.0):
    rng = np.random.default_rng(seed)
    teacher = (rng.normal(size=(rows, K)) * scale).astype(np.float32)
    student = (rng.normal(size=(rows, K)) * scale).astype(np.float32)
    one_hot = np.eye(K, dtype=np.float32)[rng.integers(0, K, rows)]
    return teacher, student, one_hot


def cross_entropy(smoothing):
    return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)


# --- the term and the loss, against numpy -------------------------------------------------------

@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_the_term_matches_a_numpy_kl_times_t_squared(temperature):
    teacher, student, _ = random_problem()
    expected = temperature ** 2 * numpy_kl(teacher, student, temperature)
    np.testing.assert_allclose(term(teacher, student, temperature), expected, rtol=1e-5,
                               atol=1e-6)
    assert expected.min() > 1e-3  # random logits: far from zero, so the match means something


def test_the_t_squared_factor_gives_hintons_matching_logits_limit():
    """At a high T, T² · KL tends to the mean-centred squared logit difference / (2K) (Hinton
    et al., section 2.1): without the T² the term would be T² = 10⁴ times smaller."""
    teacher, student, _ = random_problem(seed=1, scale=2.0)
    difference = teacher.astype(np.float64) - student
    limit = ((difference - difference.mean(axis=1, keepdims=True)) ** 2).sum(axis=1) / (2 * K)
    np.testing.assert_allclose(term(teacher, student, 100.0), limit, rtol=0.03)
    # and T² exactly: the term over T² is the bare KL at that temperature
    np.testing.assert_allclose(term(teacher, student, 4.0) / 16.0,
                               numpy_kl(teacher, student, 4.0), rtol=1e-5, atol=1e-7)


def test_a_hand_worked_example():
    """Two classes, teacher softmax (1/4, 3/4) at T = 2, student (1/2, 1/2):
    KL = 1/4 log(1/2) + 3/4 log(3/2) = 3/4 log 3 - log 2; T² · KL = 4 (3/4 log 3 - log 2).
    With the hard label on class 1 (CE = log 2) and λ = 1/2 the loss is
    1/2 log 2 + 2 (3/4 log 3 - log 2) = 3/2 log(3/2)."""
    teacher, student = np.array([[0.0, 2 * math.log(3)]]), np.array([[0.0, 0.0]])
    assert term(teacher, student, 2.0)[0] == pytest.approx(4 * (0.75 * math.log(3) - math.log(2)),
                                                          rel=1e-6)
    loss = distillation.DistillationLoss(cross_entropy(0.0), temperature=2.0, weight=0.5)
    y_true = np.concatenate([[[0.0, 1.0]], teacher], axis=1).astype(np.float32)
    value = float(keras.ops.convert_to_numpy(loss(y_true, student.astype(np.float32))))
    assert value == pytest.approx(1.5 * math.log(1.5), rel=1e-6)


def test_the_term_is_zero_when_the_student_equals_the_teacher():
    teacher, _, _ = random_problem()
    assert np.all(term(teacher, teacher, 4.0) == 0.0)
    # a constant per row changes no softmax
    np.testing.assert_allclose(term(teacher, teacher + 5.0, 1.0), 0.0, atol=1e-5)


def test_the_term_computes_in_float32_from_half_precision_logits():
    teacher, student, _ = random_problem()
    value = distillation.distillation_term(teacher.astype(np.float16),
                                           student.astype(np.float16), 4.0)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"


def one_step(y_true, student, loss):
    """Trains per-example logits (an Embedding row each) for one SGD step of learning rate 1
    through Keras' own compile and train_on_batch: (logits after, the step's logs). The step is
    minus the loss's gradient."""
    rows = len(student)
    indices = keras.Input((), dtype="int32")
    logits = keras.layers.Embedding(rows, student.shape[1],
                                    embeddings_initializer=keras.initializers.Constant(student))
    trained = keras.Model(indices, logits(indices))
    trained.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss, metrics=["accuracy"])
    logs = trained.train_on_batch(np.arange(rows), y_true, return_dict=True)
    return keras.ops.convert_to_numpy(logits.embeddings).astype(np.float64), logs


@pytest.mark.backend
def test_the_gradient_is_zero_when_the_student_equals_the_teacher():
    teacher, _, one_hot = random_problem()
    targets, loss = distillation.distill(one_hot, cross_entropy(0.0), teacher, 4.0, 1.0)
    after, logs = one_step(targets, teacher, loss)
    np.testing.assert_allclose(after, teacher, atol=1e-6)
    assert logs["loss"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.backend
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_the_gradient_through_keras_matches_numpy(smoothing):
    """d/dz [(1 - λ) CE + λ T² KL] = (1 - λ)(q - y) + λ T (q_T - p_T), averaged over the batch;
    Keras' accuracy reads the labels, not the teacher's columns."""
    teacher, student, one_hot = random_problem(seed=2)
    temperature, weight = 4.0, 0.3
    targets, loss = distillation.distill(one_hot, cross_entropy(smoothing), teacher,
                                         temperature, weight)
    after, logs = one_step(targets, student, loss)
    smoothed = one_hot * (1 - smoothing) + smoothing / K
    gradient = ((1 - weight) * (softmax(student.astype(np.float64)) - smoothed)
                + weight * temperature * (softmax(student / temperature)
                                          - softmax(teacher / temperature))) / len(student)
    np.testing.assert_allclose(student - after, gradient, atol=2e-6)
    expected_loss = ((1 - weight) * numpy_cross_entropy(one_hot, student, smoothing)
                     + weight * temperature ** 2 * numpy_kl(teacher, student, temperature))
    assert logs["loss"] == pytest.approx(expected_loss.mean(), rel=1e-5)
    assert logs["accuracy"] == pytest.approx(
        (one_hot.argmax(axis=1) == student.argmax(axis=1)).mean())


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_weight_zero_is_exactly_the_base_cross_entropy(smoothing):
    teacher, student, one_hot = random_problem(seed=3)
    base = cross_entropy(smoothing)
    targets, loss = distillation.distill(one_hot, base, teacher, 4.0, 0.0)
    distilled = keras.ops.convert_to_numpy(loss(targets, student))
    plain = keras.ops.convert_to_numpy(base(one_hot, student))
    assert distilled == plain  # bit for bit
    assert float(plain) == pytest.approx(numpy_cross_entropy(one_hot, student, smoothing).mean(),
                                         rel=1e-5)
    # and weight one is the distillation term alone
    _, only_teacher = distillation.distill(one_hot, base, teacher, 4.0, 1.0)
    assert float(keras.ops.convert_to_numpy(only_teacher(targets, student))) == pytest.approx(
        16.0 * numpy_kl(teacher, student, 4.0).mean(), rel=1e-5)


def test_the_loss_round_trips_through_its_config():
    teacher, student, one_hot = random_problem(seed=4)
    targets, loss = distillation.distill(one_hot, cross_entropy(0.1), teacher, 3.0, 0.25)
    rebuilt = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(rebuilt, distillation.DistillationLoss)
    assert (rebuilt.temperature, rebuilt.weight, rebuilt.reduction, rebuilt.name) == \
        (3.0, 0.25, loss.reduction, loss.name)
    assert rebuilt.base_loss.get_config() == loss.base_loss.get_config()
    assert rebuilt.base_loss.get_config()["label_smoothing"] == 0.1
    again = distillation.DistillationLoss.from_config(loss.get_config())
    for other in (rebuilt, again):
        assert keras.ops.convert_to_numpy(other(targets, student)) == \
            keras.ops.convert_to_numpy(loss(targets, student))


def test_distill_appends_the_teachers_log_probabilities():
    teacher, _, one_hot = random_problem(seed=5, scale=20.0)
    smoothed = one_hot * 0.9 + 0.01
    targets, loss = distillation.distill(smoothed, cross_entropy(0.0), teacher, 4.0, 0.5)
    assert targets.dtype == np.float32 and targets.shape == (16, 2 * K)
    assert np.array_equal(targets[:, :K], smoothed.astype(np.float32))
    appended = targets[:, K:].astype(np.float64)
    # the same softmax at any temperature; <= 0, so the labels win the row's argmax
    for temperature in (1.0, 4.0):
        np.testing.assert_allclose(softmax(appended / temperature),
                                   softmax(teacher.astype(np.float64) / temperature),
                                   rtol=1e-5, atol=1e-7)
    assert appended.max() <= 0.0
    assert np.array_equal(targets.argmax(axis=1), one_hot.argmax(axis=1))
    assert (loss.temperature, loss.weight) == (4.0, 0.5)
    with pytest.raises(ValueError, match="must match the targets"):
        distillation.distill(one_hot, cross_entropy(0.0), teacher[:, :5], 4.0, 0.5)


# --- the teacher's logits from a saved model ---------------------------------------------------

MEAN, STD = np.array([125, 123, 114], np.float32), np.array([63, 62, 66], np.float32)


def saved_teacher(path, policy="float32"):
    """A small teacher saved as the scripts save one (the inference model of the student
    preset, untrained); returns it."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        _, inference = model.build_models(recipes.RECIPES["overfit_small"], MEAN, STD, seed=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    inference.save(path)
    return inference


def images(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher") / "teacher.keras"
    saved_teacher(path)
    return str(path)


def test_teacher_logits_are_the_saved_models_in_padded_batches(teacher_file):
    pictures = images(13)
    logits = distillation.teacher_logits(teacher_file, pictures, batch_size=5)
    assert logits.dtype == np.float32 and logits.shape == (13, K)
    expected = keras.saving.load_model(teacher_file).predict(pictures, verbose=0)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


def test_a_bfloat16_teacher_predicts_in_float32(tmp_path):
    path = tmp_path / "bf16.keras"
    teacher = saved_teacher(path, "mixed_bfloat16")
    loaded = distillation.load_teacher(str(path))
    assert {layer.dtype_policy.name for layer in loaded._flatten_layers()} == {"float32"}
    # the same weights in a float32 model: what the float32 copy must compute
    _, reference = model.build_models(recipes.RECIPES["overfit_small"], MEAN, STD, seed=0)
    reference.set_weights(teacher.get_weights())
    pictures = images(8, seed=1)
    exact = reference.predict(pictures, verbose=0)
    as_saved = keras.saving.load_model(path).predict(pictures, verbose=0)
    ours = distillation.teacher_logits(str(path), pictures)
    assert np.abs(ours - exact).max() < np.abs(as_saved - exact).max() / 10


def one_line_usage_error(call):
    with pytest.raises(UsageError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message.startswith("--teacher ")
    return message


def test_a_missing_or_non_keras_teacher_is_a_one_line_usage_error(tmp_path):
    pictures = images(2)
    assert "not a loadable Keras model" in one_line_usage_error(
        lambda: distillation.teacher_logits(str(tmp_path / "missing.keras"), pictures))
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"\x00 not a zip at all")
    assert "not a loadable Keras model" in one_line_usage_error(
        lambda: distillation.teacher_logits(str(garbage), pictures))
    no_config = tmp_path / "no_config.keras"
    with zipfile.ZipFile(no_config, "w") as archive:
        archive.writestr("metadata.json", "{}")
    assert "not a loadable Keras model" in one_line_usage_error(
        lambda: distillation.teacher_logits(str(no_config), pictures))


@pytest.mark.parametrize("input_shape, dtype, classes", [
    ((28, 28, 1), "uint8", K),      # another dataset's images
    ((32, 32, 3), "float32", K),    # a bare network, without the saved model's normalisation
    ((32, 32, 3), "uint8", 5),      # another number of classes
])
def test_a_teacher_of_the_wrong_shape_is_a_one_line_usage_error(tmp_path, input_shape, dtype,
                                                                classes):
    inputs = keras.Input(input_shape, dtype=dtype)
    flat = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    path = tmp_path / "other.keras"
    keras.Model(inputs, keras.layers.Dense(classes)(flat)).save(path)
    message = one_line_usage_error(lambda: distillation.load_teacher(str(path)))
    assert "a teacher takes uint8 images (32, 32, 3) and gives 10 logits" in message


def test_teacher_record_reads_the_json_beside_the_teacher(tmp_path):
    path = str(tmp_path / "teacher.keras")
    assert distillation.teacher_record(path) == {
        "path": path, "json": None, "method": None, "smoothing": None, "recipe": None,
        "seed": None, "train_images": None, "test_accuracy": None, "one_view_accuracy": None}
    (tmp_path / "teacher.json").write_text(json.dumps(
        {"method": "loss", "args": {"smoothing": 0.1, "recipe": "overfit", "seed": 1},
         "data": {"train_images": 5000}, "recipe": {"tta": "flip_translate"},
         "test_accuracy": 0.71, "one_view": {"test_metrics": {"accuracy": 0.69}}}))
    assert distillation.teacher_record(path) == {
        "path": path, "json": str(tmp_path / "teacher.json"), "method": "loss",
        "smoothing": 0.1, "recipe": "overfit", "seed": 1, "train_images": 5000,
        "test_accuracy": 0.71, "one_view_accuracy": 0.69}
    (tmp_path / "teacher.json").write_text("{not json")
    assert distillation.teacher_record(path)["json"] is None


# --- the student preset ------------------------------------------------------------------------

def test_the_student_preset_is_overfit_at_half_width_and_width_one_changes_nothing():
    small, overfit = recipes.RECIPES["overfit_small"], recipes.RECIPES["overfit"]
    assert {key: value for key, value in small.items() if value != overfit[key]} == {"width": 0.5}
    assert not small["max_shift"] and not small["flip"]  # distillation needs no augmentation
    assert model.build_network(dict(overfit, bn_scale=False)).count_params() == \
        resnet.build_fast_resnet(bn_scale=False).count_params()
    student = model.build_network(dict(small, bn_scale=False))
    assert student.count_params() == resnet.build_fast_resnet(
        widths=(32, 128, 128), bn_scale=False).count_params()


# --- the flags ---------------------------------------------------------------------------------

FLAG_PROBE = r"""
import contextlib, io, json, sys
import label_smoothing_loss
cases = json.loads(sys.argv[1])
results = []
for argv in cases:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = label_smoothing_loss.main(argv)
    results.append([code, err.getvalue()])
heavy = sorted(name for name in ("keras", "tensorflow", "jax", "torch") if name in sys.modules)
print(json.dumps({"results": results, "heavy": heavy}))
"""


def flag_cases(folder, dataset):
    """(argv, the message its one line must hold) of each bad use of the distillation flags.
    Each is a tiny run otherwise, so that one whose check is missing trains seconds, not a
    full-size run."""
    teacher = os.path.join(folder, "teacher.keras")
    plot = os.path.join(folder, "student.png")
    tiny = tiny_argv(dataset, plot, "--epochs", "1")
    small = tiny + ["--recipe", "overfit_small"]
    distilled = small + ["--teacher", teacher]
    return [
        (distilled + ["--distill-temperature", "0"],
         "--distill-temperature must be a positive number, got 0.0"),
        (distilled + ["--distill-temperature", "inf"], "--distill-temperature must be a positive"),
        (distilled + ["--distill-temperature", "nan"], "--distill-temperature must be a positive"),
        (distilled + ["--distill-weight", "1.5"], "--distill-weight must be in [0, 1], got 1.5"),
        (distilled + ["--distill-weight", "-0.1"], "--distill-weight must be in [0, 1], got -0.1"),
        (distilled + ["--distill-weight", "nan"], "--distill-weight must be in [0, 1], got nan"),
        (small + ["--teacher", os.path.join(folder, "none.keras")], "none.keras: no such file"),
        (small + ["--teacher", os.path.join(folder, "teacher.txt")],
         "teacher.txt: not a .keras file"),
        (tiny + ["--teacher", teacher],
         f"--teacher needs a recipe without augmentation: recipe {recipes.DEFAULT_RECIPE} shifts "
         "or flips"),
        (small + ["--distill-weight", "0.3"], "--distill-weight needs --teacher PATH.keras"),
        (small + ["--distill-temperature", "2"],
         "--distill-temperature needs --teacher PATH.keras"),
        (small + ["--teacher", teacher, "--plot", os.path.join(folder, "teacher.png")],
         "is the model this run writes"),
    ]


FLAG_CASES = 12


@pytest.fixture(scope="module")
def flag_probe(tmp_path_factory, tiny_cifar):
    """Every case of flag_cases in one fresh Python: (cases, [exit code, stderr] of each,
    the heavy modules loaded after them all)."""
    folder = str(tmp_path_factory.mktemp("flags"))
    cases = flag_cases(folder, tiny_cifar)
    for name in ("teacher.keras", "teacher.txt"):  # the checks before Keras need only a file
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(b"a file")
    completed = subprocess.run(
        [sys.executable, "-c", FLAG_PROBE, json.dumps([argv for argv, _ in cases])], cwd=ROOT,
        capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    probe = json.loads(completed.stdout.strip().splitlines()[-1])
    return cases, probe["results"], probe["heavy"]


@pytest.mark.parametrize("case", range(FLAG_CASES))
def test_a_bad_distillation_flag_is_one_line_and_exit_2(flag_probe, case):
    cases, results, _ = flag_probe
    (argv, message), (code, err) = cases[case], results[case]
    assert code == 2, (argv, err)
    assert err.count("\n") == 1 and err.startswith("label_smoothing_loss.py: error: "), err
    assert message in err, err


def test_the_distillation_flags_are_checked_before_keras_loads(flag_probe):
    cases, results, heavy = flag_probe
    assert len(cases) == len(results) == FLAG_CASES
    assert heavy == []


def config_of(*argv, script=label_smoothing_loss):
    return cli.parse_config(script.METHOD, list(argv))


def test_the_identity_names_the_teacher_and_its_settings(teacher_file, tmp_path):
    plot = str(tmp_path / "student.png")
    config = config_of("--plot", plot, "--recipe", "overfit_small", "--teacher", teacher_file,
                       "--smoothing", "0")
    identity = config.identity()
    assert identity["teacher"] == os.path.abspath(teacher_file)
    with open(teacher_file, "rb") as handle:
        assert identity["teacher_sha256"] == hashlib.sha256(handle.read()).hexdigest()
    assert (identity["distill_temperature"], identity["distill_weight"]) == (4.0, 0.5)
    assert config.args()["teacher"] == identity["teacher"]
    changed = config_of("--plot", plot, "--recipe", "overfit_small", "--teacher", teacher_file,
                        "--smoothing", "0", "--distill-temperature", "1",
                        "--distill-weight", "0.7", script=label_smoothing_func)
    assert (changed.distill_temperature, changed.distill_weight) == (1.0, 0.7)
    assert changed.identity()["distill_temperature"] == 1.0
    # without a teacher: None in the JSON's args, absent from the identity (older backups resume)
    plain = config_of("--plot", plot, "--recipe", "overfit_small")
    assert {key: plain.args()[key] for key in ("teacher", "teacher_sha256",
                                               "distill_temperature", "distill_weight")} == \
        dict.fromkeys(("teacher", "teacher_sha256", "distill_temperature", "distill_weight"))
    assert not set(plain.identity()) & {"teacher", "teacher_sha256", "distill_temperature",
                                        "distill_weight"}


def fake_backup(folder, identity):
    """A backup of one epoch made with `identity`, as backup.EpochBackup writes one."""
    import h5py

    folder.mkdir()
    h5py.File(folder / "epoch_0001.weights.h5", "w").close()
    (folder / "state.json").write_text(json.dumps(
        {"config": identity, "epoch": 1, "weights": "epoch_0001.weights.h5",
         "history": [{"loss": 1.0}]}))


def test_a_run_with_another_teacher_refuses_to_resume(tiny_cifar, tmp_path, capsys):
    first, second = tmp_path / "first.keras", tmp_path / "second.keras"
    saved_teacher(first)
    second.write_bytes(first.read_bytes())  # the same bytes under another name
    argv = tiny_argv(tiny_cifar, tmp_path / "student.png", "--recipe", "overfit_small",
                     "--epochs", "2", "--teacher", str(first))
    fake_backup(tmp_path / "student_backup", config_of(*argv).identity())
    # the same teacher resumes
    assert backup.check_matches(str(tmp_path / "student_backup"),
                                config_of(*argv).identity()) == 1
    argv[argv.index("--teacher") + 1] = str(second)
    assert label_smoothing_loss.main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after any warning of the run's
    assert error.startswith("label_smoothing_loss.py: error: ")
    assert "holds an interrupted run with different settings (teacher)" in error
    # a teacher retrained in place is another teacher too: its digest differs
    first.write_bytes(b"retrained" + first.read_bytes())
    argv[argv.index("--teacher") + 1] = str(first)
    assert label_smoothing_loss.main(argv) == 2
    assert "different settings (teacher_sha256)" in capsys.readouterr().err


# --- a distilled run end to end ------------------------------------------------------------------


@pytest.mark.backend
def test_a_distilled_run_trains_and_weight_zero_trains_as_without_a_teacher(tiny_cifar,
                                                                            teacher_file,
                                                                            tmp_path):
    base = ["--recipe", "overfit_small", "--epochs", "2", "--smoothing", "0.1"]
    assert label_smoothing_loss.main(tiny_argv(tiny_cifar, tmp_path / "plain.png", *base)) == 0
    assert label_smoothing_loss.main(tiny_argv(
        tiny_cifar, tmp_path / "zero.png", *base, "--teacher", teacher_file,
        "--distill-weight", "0")) == 0
    assert label_smoothing_loss.main(tiny_argv(
        tiny_cifar, tmp_path / "half.png", *base, "--teacher", teacher_file)) == 0
    plain, zero, half = (json.loads((tmp_path / f"{name}.json").read_text())
                         for name in ("plain", "zero", "half"))
    assert half["args"]["teacher"] == os.path.abspath(teacher_file)
    assert (half["args"]["distill_temperature"], half["args"]["distill_weight"]) == (4.0, 0.5)
    # λ = 0: the same batches, the same loss bit for bit, so the same training
    assert zero["history"] == {**plain["history"], "seconds": zero["history"]["seconds"]}
    assert half["history"]["loss"] != plain["history"]["loss"]
    # the training accuracy is the labels', not spoilt by the teacher's columns
    assert 0 < half["history"]["accuracy"][-1] <= 1


# --- the study's table -------------------------------------------------------------------------

def load_table_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "distillation_table", os.path.join(ROOT, "experiments", "distillation_table.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(path, recipe, smoothing, seed, accuracy, ece, teacher=None, temperature=None):
    """A finished run's JSON with only what the table reads (one view: a recipe without views)."""
    args = {"recipe": recipe, "smoothing": smoothing, "seed": seed, "teacher": teacher,
            "distill_temperature": temperature, "distill_weight": 0.5 if teacher else None}
    path.write_text(json.dumps({
        "method": "loss", "args": args, "recipe": {"tta": "none"}, "history": {},
        "epochs_completed": 30, "wall_seconds": 1.0,
        "reliability_bins": {"count": [1], "mean_confidence": [0.5], "accuracy": [0.5]},
        "test_metrics": {"accuracy": accuracy, "ece": ece}}))
    return str(path)


def test_the_table_groups_teachers_students_and_distilled_students(tmp_path, capsys):
    table = load_table_script()
    moved = tmp_path / "moved"  # the runs were copied elsewhere: teachers found by file name
    moved.mkdir()
    paths = [fake_run(moved / "teacher_s0_seed0.json", "overfit", 0.0, 0, 0.70, 0.05),
             fake_run(moved / "teacher_s0_seed1.json", "overfit", 0.0, 1, 0.72, 0.07),
             fake_run(moved / "student_s0_seed0.json", "overfit_small", 0.0, 0, 0.60, 0.10)]
    for index, (teacher, accuracy) in enumerate((("teacher_s0_seed0", 0.64),
                                                 ("teacher_s0_seed1", 0.66))):
        paths.append(fake_run(moved / f"distilled_{index}.json", "overfit_small", 0.0, index,
                              accuracy, 0.02, teacher=f"/gone/{teacher}.keras", temperature=4.0))
    plot = tmp_path / "table" / "distillation.png"
    assert table.main(paths + ["--plot", str(plot)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("| overfit")]
    assert rows == [
        "| overfit | 0 | – | – | – | 2 | – | 0.7100 ± 0.0141 | 0.0600 ± 0.0141 |",
        "| overfit_small | 0 | – | – | – | 1 | – | 0.6000 | 0.1000 |",
        "| overfit_small | 0 | 0 | 4 | 0.5 | 2 | 0.7100 ± 0.0141 | 0.6500 ± 0.0141 "
        "| 0.0200 ± 0.0000 |"]
    assert (tmp_path / "table" / "distillation.md").read_text().count("| overfit") == 3
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_distilled_run_killed_between_epochs_resumes_to_the_uninterrupted_result(
        tiny_cifar, teacher_file, tmp_path):
    from test_repeatable import assert_same, finish, outcome, start

    def argv(plot):
        return tiny_argv(tiny_cifar, plot, "--recipe", "overfit_small", "--epochs", "4",
                         "--teacher", teacher_file, "--distill-temperature", "4")

    finish(start(argv(tmp_path / "whole.png")))
    process = start(argv(tmp_path / "cut.png"))
    wait_for_backed_up_epochs(str(tmp_path / "cut_backup"), 1, process)
    process.kill()
    process.wait(timeout=60)
    assert "resuming from" in finish(start(argv(tmp_path / "cut.png")))
    pictures = images(16)
    assert_same(outcome(tmp_path / "whole.png", pictures), outcome(tmp_path / "cut.png", pictures))
