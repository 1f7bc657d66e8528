"""Run by the Python of a virtual environment that `pip install --no-deps` filled: the package's
every module, both training scripts and their commands are installed (its dependencies are not,
so nothing is imported here). Argument: the checkout the installed files must match."""
import glob
import os
import sys
from importlib import metadata

DISTRIBUTION = "label-smoothing-keras"
COMMANDS = {"label-smoothing-func": "label_smoothing_func:main",
            "label-smoothing-loss": "label_smoothing_loss:main",
            "label-smoothing-figures": "pyimagesearch.figures:main"}


def main(checkout):
    installed = {str(path).replace(os.sep, "/") for path in metadata.files(DISTRIBUTION)}
    expected = {os.path.relpath(path, checkout).replace(os.sep, "/")
                for path in glob.glob(os.path.join(checkout, "pyimagesearch", "*.py"))}
    expected |= {"label_smoothing_func.py", "label_smoothing_loss.py"}
    missing = sorted(expected - installed)
    if missing:
        sys.exit(f"check_install: not installed: {', '.join(missing)}")
    scripts = {entry.name: entry.value
               for entry in metadata.entry_points(group="console_scripts")
               if entry.dist is not None and entry.dist.name == DISTRIBUTION}
    if scripts != COMMANDS:
        sys.exit(f"check_install: console scripts {scripts}, expected {COMMANDS}")
    binaries = os.path.dirname(sys.executable)
    absent = [name for name in COMMANDS if not os.path.exists(os.path.join(binaries, name))]
    if absent:
        sys.exit(f"check_install: commands not in {binaries}: {', '.join(absent)}")
    print(f"check_install: {len(expected)} modules and {len(COMMANDS)} commands installed")


if __name__ == "__main__":
    main(sys.argv[1])
