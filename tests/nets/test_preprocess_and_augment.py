"""Pixel scaling, cropping and the random views of the contrastive loss."""

import pytest
import torch

from clapkit.errors import ValidationError
from clapkit.nets import (
    DIHEDRAL_ELEMENTS,
    apply_dihedral,
    center_crop,
    feature_jitter,
    random_dihedral,
    scale_pixels,
)


def test_scale_pixels_is_odd_and_log1p():
    x = torch.tensor([-10.0, -0.5, 0.0, 0.5, 10.0])
    y = scale_pixels(x)
    assert torch.allclose(y, torch.sign(x) * torch.log1p(x.abs()))
    assert torch.allclose(scale_pixels(-x), -y)


def test_center_crop_takes_the_middle():
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    crop = center_crop(x, 2)
    assert torch.equal(crop[0, 0], torch.tensor([[14.0, 15.0], [20.0, 21.0]]))
    assert center_crop(x, 6).shape == (1, 1, 6, 6)


@pytest.mark.parametrize(
    ("size", "match"),
    [
        (7, "crop size 7 exceeds the image size"),
        (0, "crop size must be an integer >= 1, got 0"),
        (2.5, r"crop size must be an integer >= 1, got 2\.5"),
        (True, "crop size must be an integer >= 1, got True"),
    ],
)
def test_center_crop_rejects_bad_sizes(size, match):
    with pytest.raises(ValidationError, match=match):
        center_crop(torch.zeros(1, 1, 6, 6), size)


def test_center_crop_rejects_non_images():
    with pytest.raises(ValidationError, match=r"\(B, C, H, W\)"):
        center_crop(torch.zeros(6, 6), 2)


def _asymmetric_images(n: int) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(n, 3, 8, 8)  # random pixels: no symmetry of the square


def test_dihedral_view_permutes_pixels_and_keeps_the_sum():
    x = _asymmetric_images(16)
    y = random_dihedral(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape
    for xi, yi in zip(x, y, strict=True):
        assert torch.equal(xi.flatten().sort().values, yi.flatten().sort().values)
        assert not torch.equal(xi, yi)
    assert torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)))


def test_dihedral_view_does_not_modify_its_input():
    x = _asymmetric_images(4)
    before = x.clone()
    random_dihedral(x)
    assert torch.equal(x, before)


def test_all_seven_non_identity_symmetries_are_reached():
    x = _asymmetric_images(1).expand(200, -1, -1, -1)
    y = random_dihedral(x, torch.Generator().manual_seed(2))
    elements = [apply_dihedral(x[:1], k)[0] for k in range(len(DIHEDRAL_ELEMENTS))]
    assert all(not torch.equal(elements[0], e) for e in elements[1:])  # the 8 are distinct
    found = set()
    for yi in y:
        matches = [k for k, e in enumerate(elements) if torch.equal(yi, e)]
        assert len(matches) == 1
        found.add(matches[0])
    assert found == set(range(1, 8))


def test_dihedral_view_is_reproducible_with_a_generator():
    x = _asymmetric_images(8)
    y1 = random_dihedral(x, torch.Generator().manual_seed(5))
    y2 = random_dihedral(x, torch.Generator().manual_seed(5))
    assert torch.equal(y1, y2)


def test_dihedral_view_rejects_features_and_rectangles():
    with pytest.raises(ValidationError, match="feature_jitter"):
        random_dihedral(torch.zeros(4, 7))
    with pytest.raises(ValidationError, match="square"):
        random_dihedral(torch.zeros(2, 1, 4, 6))


def test_feature_jitter_adds_small_noise():
    x = torch.ones(2000, 4)
    y = feature_jitter(x, 0.05, torch.Generator().manual_seed(0))
    noise = y - x
    assert abs(float(noise.mean())) < 0.005
    assert float(noise.std()) == pytest.approx(0.05, rel=0.05)
    assert torch.equal(feature_jitter(x, 0.0), x)
    with pytest.raises(ValidationError, match="scale"):
        feature_jitter(x, -1.0)
