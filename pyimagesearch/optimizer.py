"""SGD in which batch-norm shifts learn faster than everything else.

airbench (Keller Jordan, 2024) trains the BatchNorm shifts ("beta") with a learning rate 64 times
the network's; this project's 5-epoch probes at an earlier commit kept it
(results/previous/f96ae48/probes/). Keras' optimizers have one learning rate, so this subclass
scales it per variable. Weight decay is unaffected (and the recipes exclude beta from
it).

It can also stop training a variable after a number of steps, in the compiled training step (no
recompilation, no callback): airbench trains its whitened stem's bias for the first epochs only.
"""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="pyimagesearch")
class BatchNormShiftSGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD`, except that variables named in `shift_names` (by default batch
    norms' "beta") take steps with `shift_lr_scale` times the learning rate, and that each
    variable whose path (e.g. "stem/bias") is a key of `frozen_after_steps` takes only that many
    steps, the optimizer's first ones, and then keeps its value. Momentum would carry a variable
    on after its gradient's learning rate is zeroed, so the frozen variable's update is undone
    instead: its value before the step is kept."""

    def __init__(self, shift_lr_scale=1.0, shift_names=("beta",), frozen_after_steps=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.shift_lr_scale = shift_lr_scale
        self.shift_names = tuple(shift_names)
        self.frozen_after_steps = dict(frozen_after_steps or {})
        self._shift_keys = set()
        self._step_limits = {}

    def build(self, variables):
        super().build(variables)
        self._shift_keys = {self._var_key(variable) for variable in variables
                            if variable.name in self.shift_names}
        self._step_limits = {self._var_key(variable): self.frozen_after_steps[variable.path]
                             for variable in variables
                             if variable.path in self.frozen_after_steps}
        missing = set(self.frozen_after_steps) - {variable.path for variable in variables}
        if missing:
            raise ValueError(f"frozen_after_steps names no trainable variable: {sorted(missing)}")

    def is_shift(self, variable):
        """Whether `variable` steps with the scaled learning rate (after `build`)."""
        return self._var_key(variable) in self._shift_keys

    def update_step(self, gradient, variable, learning_rate):
        if self.is_shift(variable):
            learning_rate = learning_rate * self.shift_lr_scale
        step_limit = self._step_limits.get(self._var_key(variable))
        if step_limit is None:
            super().update_step(gradient, variable, learning_rate)
            return
        before = ops.copy(ops.convert_to_tensor(variable))
        super().update_step(gradient, variable, learning_rate)
        # `iterations` counts the steps already taken: this one is step `iterations` (0-based)
        still_training = ops.less(self.iterations, step_limit)
        self.assign(variable, ops.where(still_training, ops.convert_to_tensor(variable), before))

    def get_config(self):
        return {**super().get_config(), "shift_lr_scale": self.shift_lr_scale,
                "shift_names": list(self.shift_names),
                "frozen_after_steps": self.frozen_after_steps}
