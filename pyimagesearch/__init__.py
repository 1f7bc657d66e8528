"""Label smoothing on CIFAR-10 with Keras 3: the shared package behind the two training scripts.

Each import points down this list:
  cli          arguments and their checks, exit codes, the closing summary
  training     one run: data -> model -> fit -> evaluate -> outputs
  recipes      every hyperparameter preset, one commented block
  hardware     backend, devices, precision, versions, data parallelism (the only module that
               imports tensorflow, jax or torch)
  evaluation   test metrics, classification report, temperature scaling
  model        the recipe's model assembled: uint8 in, augmentation and normalisation as layers
  processes    several processes as one job (JAX): shards, a local copy of the weights
  callbacks    validation, divergence stop, resumable history, backup, lookahead, time estimate
  figures      every figure, drawn from a run's JSON (python -m pyimagesearch.figures RUN.json)
  augment, resnet, optimizer, schedule, whitening, calibration, cifar10, outputs, smoothing,
  comparison, penultimate, errors
Nothing heavy is imported here.
"""
from pyimagesearch.smoothing import smooth_labels

__all__ = ["smooth_labels"]
