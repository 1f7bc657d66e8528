"""SGD in which batch-norm shifts learn faster than everything else.

airbench (Keller Jordan, 2024) trains the BatchNorm shifts ("beta") with a learning rate 64 times
the network's; this project's 5-epoch probes at an earlier commit kept it
(results/previous/f96ae48/probes/). Keras' optimizers have one learning rate, so this subclass
scales it per variable. Weight decay is unaffected (and the recipes exclude beta from
it).
"""
import keras


@keras.saving.register_keras_serializable(package="pyimagesearch")
class BatchNormShiftSGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD`, except that variables named in `shift_names` (by default batch
    norms' "beta") take steps with `shift_lr_scale` times the learning rate."""

    def __init__(self, shift_lr_scale=1.0, shift_names=("beta",), **kwargs):
        super().__init__(**kwargs)
        self.shift_lr_scale = shift_lr_scale
        self.shift_names = tuple(shift_names)
        self._shift_keys = set()

    def build(self, variables):
        super().build(variables)
        self._shift_keys = {self._var_key(variable) for variable in variables
                            if variable.name in self.shift_names}

    def is_shift(self, variable):
        """Whether `variable` steps with the scaled learning rate (after `build`)."""
        return self._var_key(variable) in self._shift_keys

    def update_step(self, gradient, variable, learning_rate):
        if self.is_shift(variable):
            learning_rate = learning_rate * self.shift_lr_scale
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "shift_lr_scale": self.shift_lr_scale,
                "shift_names": list(self.shift_names)}
