"""Where a run's time goes: wall seconds of each phase, so that every run's JSON and closing line
say how much of it was training."""
import contextlib
import time

# The order the JSON and the closing line give them in.
PHASES = ("load", "build", "fit_setup", "first_epoch", "later_epochs", "evaluation", "writing")


class Phases:
    """`with phases("load"): ...` adds the block's wall seconds to that phase. `split_fit` splits
    the "fit" phase into its first epoch (compiling, warm-up), the later ones, and what `fit`
    spends outside its epochs ("fit_setup": preparing the data, restoring a backup, the final
    lookahead weights)."""

    def __init__(self):
        self.started = time.perf_counter()
        self.seconds = {}

    @contextlib.contextmanager
    def __call__(self, name):
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began

    def split_fit(self, epochs):
        """`epochs`: this process's history entries, each with its `seconds`."""
        seconds = [epoch["seconds"] for epoch in epochs]
        fit = self.seconds.pop("fit", 0.0)
        self.seconds["first_epoch"] = seconds[0] if seconds else 0.0
        self.seconds["later_epochs"] = sum(seconds[1:])
        self.seconds["fit_setup"] = max(fit - sum(seconds), 0.0)

    def total(self):
        return time.perf_counter() - self.started

    def as_json(self):
        """{phase: seconds} in PHASES order, with 'other': the rest of the run's wall time
        (starting the backend, callbacks between epochs, printing)."""
        named = {name: round(self.seconds[name], 3) for name in PHASES if name in self.seconds}
        accounted = sum(self.seconds.get(name, 0.0) for name in PHASES)
        return {**named, "other": round(max(self.total() - accounted, 0.0), 3)}


def summary(phases_json):
    """'load 3 s, build 2 s, first epoch 140 s, ...' for the closing line."""
    return ", ".join(f"{name.replace('_', ' ')} {seconds:.0f} s"
                     for name, seconds in phases_json.items())
