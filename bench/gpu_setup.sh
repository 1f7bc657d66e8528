# Sourced by bench/gpu_check.sh and experiments/gpu_runs.sh on the GPU machine, from the
# project's root: installs the Keras wheels that ../shared/gpu/prepare.sh put in .whl/ and builds
# CIFAR-10 from .data/. With SMOKE set (a small test on any machine with the packages), only
# builds the data from ../shared. Sets `dataset`.
if [ -n "${SMOKE:-}" ]; then
  python3 ../shared/datasets/build_cifar10.py /tmp/cifar10 --archive
else
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site \
    .whl/*.whl
  export PYTHONPATH=/tmp/site
  python3 .data/build_cifar10.py /tmp/cifar10 --archive
fi
dataset=/tmp/cifar10/cifar-10-python.tar.gz
