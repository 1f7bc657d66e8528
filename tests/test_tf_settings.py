"""TensorFlow's environment settings (pyimagesearch/tf_settings.py): set before it loads, and
never over a value the user exported."""
import json
import os
import subprocess
import sys

import pytest

from conftest import tiny_argv
from pyimagesearch import tf_settings

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs a script until it first imports TensorFlow, then prints the settings in force at that
# moment: what TensorFlow reads as it loads.
SETTINGS_AT_TENSORFLOW_IMPORT = r"""
import json, os, runpy, sys

names = json.loads(sys.argv[1])
sys.argv = sys.argv[2:]

class ReportAtTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow":
            print(json.dumps({key: os.environ.get(key) for key in names}), flush=True)
            os._exit(0)
        return None

sys.meta_path.insert(0, ReportAtTensorFlow())
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_set_defaults_fills_what_is_unset_and_keeps_the_users_values():
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0", "UNRELATED": "x"}
    assert tf_settings.set_defaults(environ) == ["TF_CPU_ALLOCATOR_USE_BFC"]
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPU_ALLOCATOR_USE_BFC": "true",
                       "UNRELATED": "x"}
    assert tf_settings.set_defaults(environ) == []
    assert tf_settings.describe(environ) == \
        "TF_ENABLE_ONEDNN_OPTS=0, TF_CPU_ALLOCATOR_USE_BFC=true"


@pytest.mark.parametrize("exported", [{}, {"TF_ENABLE_ONEDNN_OPTS": "0"}])
@pytest.mark.parametrize("script", ["label_smoothing_loss.py", "label_smoothing_func.py"])
def test_scripts_set_them_before_tensorflow_loads(script, exported, tiny_cifar, tmp_path):
    names = sorted(tf_settings.DEFAULTS)
    env = {key: value for key, value in os.environ.items() if key not in names}
    env.update(exported)
    completed = subprocess.run(
        [sys.executable, "-c", SETTINGS_AT_TENSORFLOW_IMPORT, json.dumps(names), script,
         *tiny_argv(tiny_cifar, tmp_path / "run.png", "--epochs", "1")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == \
        {**tf_settings.DEFAULTS, **exported}
