import pytest

from pyimagesearch.schedule import learning_rate_schedule


def lr_at(schedule, step):
    return float(schedule(step))


def test_polynomial_power_one_is_linear_to_zero():
    schedule = learning_rate_schedule("polynomial", 5e-3, total_steps=1000)
    assert lr_at(schedule, 0) == pytest.approx(5e-3)
    assert lr_at(schedule, 250) == pytest.approx(5e-3 * 0.75)
    assert lr_at(schedule, 500) == pytest.approx(2.5e-3)
    assert lr_at(schedule, 1000) == pytest.approx(0.0, abs=1e-12)


def test_polynomial_power_two():
    schedule = learning_rate_schedule("polynomial", 0.1, total_steps=100, power=2.0)
    assert lr_at(schedule, 50) == pytest.approx(0.1 * 0.5 ** 2)
    assert lr_at(schedule, 90) == pytest.approx(0.1 * 0.1 ** 2)


def test_warmup_cosine_start_peak_middle_end():
    schedule = learning_rate_schedule("warmup_cosine", 0.4, total_steps=1100, warmup_steps=100)
    assert lr_at(schedule, 0) == pytest.approx(0.0, abs=1e-9)
    assert lr_at(schedule, 50) == pytest.approx(0.2)  # linear warm-up
    assert lr_at(schedule, 100) == pytest.approx(0.4)  # peak
    # cosine: 0.4 * 0.5 * (1 + cos(pi * t)) with t the fraction of the decay done
    assert lr_at(schedule, 600) == pytest.approx(0.2, rel=1e-5)   # t = 1/2
    assert lr_at(schedule, 350) == pytest.approx(0.4 * 0.5 * (1 + 0.5 ** 0.5), rel=1e-5)  # 1/4
    assert lr_at(schedule, 1100) == pytest.approx(0.0, abs=1e-7)


def test_rejects_unknown_schedule_and_empty_run():
    with pytest.raises(ValueError, match="unknown schedule"):
        learning_rate_schedule("step", 0.1, total_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        learning_rate_schedule("polynomial", 0.1, total_steps=0)


def test_warmup_linear_is_airbench_triangle():
    # 0.2 * lr at step 0, lr at the end of warm-up, 0.07 * lr at the last step and after
    schedule = learning_rate_schedule("warmup_linear", 1.5, total_steps=200, warmup_steps=40)
    assert lr_at(schedule, 0) == pytest.approx(0.3)
    assert lr_at(schedule, 20) == pytest.approx(1.5 * (0.2 + 0.8 * 0.5))
    assert lr_at(schedule, 40) == pytest.approx(1.5)
    assert lr_at(schedule, 120) == pytest.approx(1.5 * (1 - 0.93 * 0.5))
    assert lr_at(schedule, 200) == pytest.approx(1.5 * 0.07)
    assert lr_at(schedule, 260) == pytest.approx(1.5 * 0.07)
