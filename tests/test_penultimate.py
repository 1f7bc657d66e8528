"""The template-plane projection of Müller et al.'s Figure 1, on activations whose answer is known."""
import keras
import numpy as np
import pytest

from pyimagesearch import model, penultimate, recipes


def test_projection_recovers_in_plane_coordinates_and_ignores_the_rest():
    rng = np.random.default_rng(0)
    dimensions = 12
    templates = rng.normal(size=(3, dimensions))
    # a known orthonormal basis of the plane, by hand: u along t1 - t0, v the rest of t2 - t0
    u = (templates[1] - templates[0]) / np.linalg.norm(templates[1] - templates[0])
    rest = templates[2] - templates[0] - ((templates[2] - templates[0]) @ u) * u
    v = rest / np.linalg.norm(rest)
    coordinates = rng.normal(size=(50, 2))
    # points in the plane, plus a component orthogonal to it (which the projection drops)
    normal = rng.normal(size=dimensions)
    normal -= (normal @ u) * u + (normal @ v) * v
    activations = (templates[0] + coordinates[:, :1] * u + coordinates[:, 1:] * v
                   + rng.normal(size=(50, 1)) * normal)
    projected = penultimate.project_onto_template_plane(activations, templates)
    np.testing.assert_allclose(projected, coordinates, atol=1e-10)
    # the templates themselves land at (0, 0), (|t1 - t0|, 0) and above the first axis
    corners = penultimate.project_onto_template_plane(templates, templates)
    np.testing.assert_allclose(corners[:2], [[0, 0], [np.linalg.norm(templates[1] - templates[0]), 0]],
                               atol=1e-10)
    assert corners[2, 1] > 0


def test_templates_on_a_line_are_refused():
    line = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match="one line"):
        penultimate.template_plane_basis(line)


def test_activations_of_a_saved_model_reproduce_its_logits(tmp_path):
    # activations @ templates.T, scaled as the network scales its logits, are the model's logits
    recipe = dict(recipes.RECIPES["fast"])
    _, inference = model.build_models(recipe, np.full(3, 120, np.float32),
                                      np.full(3, 60, np.float32))
    inference.save(tmp_path / "m.keras")
    saved = keras.saving.load_model(tmp_path / "m.keras")
    images = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    activations, templates = penultimate.penultimate_activations(saved, images)
    assert activations.shape == (6, 256) and templates.shape == (10, 256)
    np.testing.assert_allclose(activations @ templates.T / 8, saved.predict(images, verbose=0),
                               rtol=1e-4, atol=1e-5)
