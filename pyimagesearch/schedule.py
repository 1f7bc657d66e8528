"""Learning-rate schedules, per optimizer step.

- "polynomial": the 2019 tutorial's decay, lr * (1 - step / total_steps) ** power, reaching 0 at
  the last step (the tutorial stepped it per epoch; per step is the same curve, smoothed).
- "warmup_cosine": linear warm-up from 0 to lr over `warmup_steps`, then cosine decay to 0 at
  `total_steps`. Short high-lr runs (airbench, ResNet-9 DAWNBench) need the warm-up to stay stable.
- "warmup_linear": airbench's triangle: linear from 0.2 * lr to lr over `warmup_steps`, then
  linear down to 0.07 * lr at `total_steps`.
"""
import keras

SCHEDULES = ("polynomial", "warmup_cosine", "warmup_linear")


@keras.saving.register_keras_serializable(package="pyimagesearch")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Piecewise linear: start_factor * peak at step 0, peak at `warmup_steps`, end_factor * peak
    at `total_steps` (and after)."""

    def __init__(self, peak_lr, total_steps, warmup_steps, start_factor=0.2, end_factor=0.07):
        self.peak_lr, self.total_steps, self.warmup_steps = peak_lr, total_steps, warmup_steps
        self.start_factor, self.end_factor = start_factor, end_factor

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rising = self.start_factor + (1 - self.start_factor) * step / max(self.warmup_steps, 1)
        falling = 1 - (1 - self.end_factor) * keras.ops.minimum(
            (step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 1.0)
        return self.peak_lr * keras.ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {"peak_lr": self.peak_lr, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "start_factor": self.start_factor,
                "end_factor": self.end_factor}


def learning_rate_schedule(name, peak_lr, total_steps, warmup_steps=0, power=1.0):
    """A `keras.optimizers.schedules.LearningRateSchedule` called with the optimizer step."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if name == "polynomial":
        return keras.optimizers.schedules.PolynomialDecay(
            initial_learning_rate=peak_lr, decay_steps=total_steps, end_learning_rate=0.0,
            power=power)
    warmup_steps = min(max(int(warmup_steps), 0), total_steps - 1)
    if name == "warmup_cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0, decay_steps=total_steps - warmup_steps, alpha=0.0,
            warmup_target=peak_lr, warmup_steps=warmup_steps)
    if name == "warmup_linear":
        return LinearWarmupDecay(peak_lr, total_steps, warmup_steps)
    raise ValueError(f"unknown schedule '{name}', expected one of {SCHEDULES}")
