"""Müller, Kornblith & Hinton (2019), Figure 1: what label smoothing does to the penultimate layer.

Pick three classes. Their templates are the last layer's weight vectors for those classes (the
logit of class k is activation · template_k). The three templates span a plane; projecting the
penultimate activations of images of those classes onto it shows, without smoothing, broad
clusters spread along the directions of their templates and, with smoothing, tight clusters at
equal distances from each other.
"""
import keras
import numpy as np


def template_plane_basis(templates):
    """An orthonormal basis (2, D) of the plane through the three templates (3, D): Gram-Schmidt
    on t1 - t0 and t2 - t0, so the first axis points from template 0 to template 1."""
    templates = np.asarray(templates, np.float64)
    if templates.shape[0] != 3:
        raise ValueError(f"need the templates of exactly 3 classes, got {templates.shape[0]}")
    first = templates[1] - templates[0]
    first /= np.linalg.norm(first)
    second = templates[2] - templates[0]
    second -= (second @ first) * first
    norm = np.linalg.norm(second)
    if norm < 1e-12:
        raise ValueError("the three templates lie on one line: they span no plane")
    return np.stack([first, second / norm])


def project_onto_template_plane(activations, templates):
    """2-D coordinates (N, 2) of activations (N, D) projected orthogonally onto the plane through
    the three templates (3, D), with template 0 at the origin."""
    basis = template_plane_basis(templates)
    return (np.asarray(activations, np.float64) - np.asarray(templates[0], np.float64)) @ basis.T


def classifier_layer(model):
    """The last Dense layer of a saved model (nested models searched), whose kernel columns are
    the class templates."""
    dense = [layer for layer in model._flatten_layers()
             if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise ValueError(f"{model.name} has no Dense layer")
    return dense[-1]


def penultimate_activations(model, images, batch_size=500):
    """(activations (N, D) entering the classifier, templates (classes, D)) of a saved inference
    model: raw uint8 images in, a chain of layers (input normalisation) and then the nested
    network whose last Dense layer is the classifier."""
    dense = classifier_layer(model)
    inputs = keras.Input(model.input_shape[1:], dtype=model.input.dtype)
    features = inputs
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):  # the network, cut before its classifier
            layer = keras.Model(layer.inputs, dense.input)
        features = layer(features)
    activations = keras.Model(inputs, features).predict(images, batch_size=batch_size, verbose=0)
    kernel = keras.ops.convert_to_numpy(dense.kernel)  # (D, classes)
    return np.asarray(activations, np.float64), kernel.T.astype(np.float64)
