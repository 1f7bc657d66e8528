"""Learning-rate schedules, per optimizer step, built from Keras' own schedule classes.

- "polynomial": the 2019 tutorial's decay, lr * (1 - step / total_steps) ** power, reaching 0 at
  the last step (the tutorial stepped it per epoch; per step is the same curve, smoothed).
- "warmup_cosine": linear warm-up from 0 to lr over `warmup_steps`, then cosine decay to 0 at
  `total_steps`. Short high-lr runs (airbench, ResNet-9 DAWNBench) need the warm-up to stay stable.
"""
import keras

SCHEDULES = ("polynomial", "warmup_cosine")


def learning_rate_schedule(name, peak_lr, total_steps, warmup_steps=0, power=1.0):
    """A `keras.optimizers.schedules.LearningRateSchedule` called with the optimizer step."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if name == "polynomial":
        return keras.optimizers.schedules.PolynomialDecay(
            initial_learning_rate=peak_lr, decay_steps=total_steps, end_learning_rate=0.0,
            power=power)
    if name == "warmup_cosine":
        warmup_steps = min(max(int(warmup_steps), 0), total_steps - 1)
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0, decay_steps=total_steps - warmup_steps, alpha=0.0,
            warmup_target=peak_lr, warmup_steps=warmup_steps)
    raise ValueError(f"unknown schedule '{name}', expected one of {SCHEDULES}")
