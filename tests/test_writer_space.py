"""The writer space (issue 11/13): an LDA of the backbone's pooled features, fitted on training
writers, and the cosine of a questioned signature to its references' mean direction."""

import numpy as np
import pytest
import torch

from workbench.verification.writer_space import (
    WriterSpace,
    comparison_similarities,
    embed_images,
    fit_writer_space,
    similarity,
    stored_writer_space,
)


def _writers(rng, n_writers=12, per_writer=8, dims=10, spread=0.3):
    """Features of writers whose centres differ in the first 3 dimensions only; the other
    dimensions carry large nuisance noise an LDA must learn to ignore."""
    centres = np.zeros((n_writers, dims))
    centres[:, :3] = rng.normal(size=(n_writers, 3))
    rows, labels = [], []
    for w in range(n_writers):
        noise = rng.normal(size=(per_writer, dims)) * spread
        noise[:, 3:] *= 10
        rows.append(centres[w] + noise)
        labels += [f"w{w}"] * per_writer
    return np.concatenate(rows), labels, centres


def test_the_writer_space_keeps_a_writer_together_and_ignores_nuisance_dimensions():
    rng = np.random.default_rng(0)
    features, labels, centres = _writers(rng)
    space = fit_writer_space(features, labels, ("synthetic",))
    assert space.projection.shape == (10, 10) and space.writers == 12 and space.images == 96
    # new signings (fresh noise, as in training) of writer 0 (references) and 1 (a stranger)
    noise = np.random.default_rng(1).normal(size=(7, 10)) * 0.3
    noise[:, 3:] *= 10
    own = centres[0] + noise[:6]
    stranger = centres[1] + noise[6:]
    same = [similarity(space, own[:5], own[5])]
    different = [similarity(space, own[:5], stranger)]
    assert same[0] > 0.5 > different[0]
    # the raw cosine, fooled by the nuisance dimensions, cannot tell them apart as well
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    raw_same = unit(own[5]) @ unit(own[:5].mean(0))
    raw_different = unit(stranger[0]) @ unit(own[:5].mean(0))
    assert same[0] - different[0] > raw_same - raw_different


def test_the_writer_space_round_trips_and_refuses_what_does_not_fit():
    rng = np.random.default_rng(2)
    features, labels, _ = _writers(rng, n_writers=4)
    space = fit_writer_space(features, labels)
    again = WriterSpace.from_dict(space.to_dict())
    x = features[:3]
    assert np.allclose(again.project(x), space.project(x), atol=1e-5)
    assert np.allclose(np.linalg.norm(space.project(x), axis=1), 1.0)
    with pytest.raises(ValueError, match="fitted on 10 features, not 7"):
        space.project(features[:, :7])
    broken = {**space.to_dict(), "scale": [0.0] * 10}
    with pytest.raises(ValueError, match="Not a writer-space record"):
        WriterSpace.from_dict(broken)
    with pytest.raises(ValueError, match="Not a writer-space record"):
        WriterSpace.from_dict({"mean": [1.0]})

    class Card:
        extra = {"writer_space": broken}

    assert stored_writer_space(Card()) is None  # a damaged record is ignored, not trusted
    Card.extra = {"writer_space": space.to_dict()}
    assert stored_writer_space(Card()).writers == 4
    with pytest.raises(ValueError, match="at least 2 training writers"):
        fit_writer_space(features[:8], ["one"] * 8)
    with pytest.raises(ValueError, match="feature rows"):
        fit_writer_space(features, labels[:-1])


def test_comparison_similarities_use_the_first_k_references():
    from workbench.verification.reference_sets import Comparison

    rng = np.random.default_rng(3)
    features, labels, _ = _writers(rng, n_writers=5)
    space = fit_writer_space(features, labels)
    paths = [f"img{i}" for i in range(len(features))]
    by_path = dict(zip(paths, features))
    c = Comparison("w0", tuple(paths[:3]), paths[20], "random")
    one, three = (comparison_similarities(space, by_path, [c], k)[0] for k in (1, 3))
    assert one == pytest.approx(similarity(space, features[:1], features[20]))
    assert three == pytest.approx(similarity(space, features[:3], features[20]))
    assert one != pytest.approx(three)


def test_embeddings_come_from_the_backbone_alone_and_batching_does_not_change_them(
    tiny_verifier,
):
    import cv2

    from tests.conftest import synthetic_signature

    model = tiny_verifier.load()
    size = tiny_verifier.size
    images = np.stack([cv2.resize(synthetic_signature(s), (size, size)) for s in range(3)])
    whole = embed_images(model, images)
    assert whole.shape == (3, 2 * model.backbone.out_channels)
    assert np.allclose(embed_images(model, images, batch_size=1), whole, atol=1e-5)
    from workbench.models.verifier import images_to_tensor

    with torch.inference_mode():
        maps = model.backbone(images_to_tensor(images))
    assert np.allclose(whole[:, : maps.shape[1]], maps.mean(dim=(2, 3)).numpy(), atol=1e-5)
