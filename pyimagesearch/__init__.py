"""Label smoothing on CIFAR-10 with Keras 3: the shared package behind the two training scripts.

Each module imports only modules below it in this list (tests/test_layout.py checks it):
  cli          the flags, exit codes, the closing summary; Keras loads only after parsing
  config       RunConfig: every setting of a run, resolved and checked once; Method
  training     one run: data -> model -> fit -> evaluate -> outputs
  writing      what a finished run writes, results first, each output on its own
  figures      every figure, drawn from a run's JSON (python -m pyimagesearch.figures RUN.json)
  comparison   tables of finished runs (compare.py)
  placement    where a run executes: devices, processes, shards, which process writes
  processes    several processes as one job (JAX): shards, a local copy of the weights
  callbacks    validation, divergence stop, lookahead, CSV log, time estimate
  backup       the per-epoch backup a kill cannot break, holding the history
  runlock      one run per set of outputs: a lock file beside them
  distillation knowledge distillation from a saved teacher: its logits, the loss
  evaluation   test metrics, classification report, temperature scaling
  model        the recipe's model assembled: uint8 in, augmentation and normalisation as layers;
               Keras' own layers in place of the fused ones, for saving
  batches      each epoch's order of the training images, in whole batches
  penultimate  the penultimate-layer projection of Mueller et al. (2019)
  augment      training augmentation and test-time views, as Keras layers and ops
  resnet       the networks
  batch_norm   batch norm through TensorFlow's fused kernel
  gelu         GELU's training step as two fused XLA kernels under TensorFlow
  hardware     backend, devices, precision, versions, compiling (the only module that
               imports tensorflow, jax or torch)
  optimizer    SGD with decoupled weight decay and faster batch-norm shifts
  schedule     learning-rate schedules
  whitening    the patch-whitening stem's kernel
  calibration  calibration metrics and temperature scaling, pure numpy
  recipes      every hyperparameter preset, one commented block
  cifar10      a safe CIFAR-10 loader and the split
  outputs      atomic writes
  phases       where a run's time goes
  signals      Ctrl-C and SIGTERM as exceptions, raised again where a finaliser swallowed one
  smoothing    smooth_labels
  tf_settings  TensorFlow's environment settings, set before it loads
  errors       every error a run raises on purpose, with its exit code
Nothing heavy is imported here.
"""
from pyimagesearch.smoothing import smooth_labels

__all__ = ["smooth_labels"]
