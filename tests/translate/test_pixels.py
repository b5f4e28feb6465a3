"""Tasks, the move to the target grid and the pixel scaling."""

import numpy as np
import pytest
import torch

from clapkit.data import ImageStack
from clapkit.errors import ValidationError
from clapkit.translate.pixels import PixelScaler, check_finite, check_grids, resample
from clapkit.translate.tasks import task


def _stack(size: int, scale: float, bands=("g", "r")) -> ImageStack:
    return ImageStack(
        np.zeros((2, len(bands), size, size), np.float32), bands, scale, (22.5,) * len(bands)
    )


def test_tasks_name_their_instruments_and_refuse_unknown():
    assert (task("s2s").source, task("s2s").target) == ("sdss", "sdss_repeat")
    assert (task("s2c").source, task("s2c").target) == ("sdss", "cfhtls")
    with pytest.raises(ValidationError, match="c2s"):
        task("c2s")


def test_resample_conserves_flux_of_a_smooth_galaxy_both_ways():
    yy, xx = np.mgrid[:64, :64] - 31.5
    galaxy = torch.from_numpy(np.exp(-(xx**2 + yy**2) / (2 * 4.0**2))).float()[None, None]
    up = resample(galaxy, 136)
    assert up.shape == (1, 1, 136, 136)
    assert up.sum().item() == pytest.approx(galaxy.sum().item(), rel=0.02)
    back = resample(up, 64)
    assert back.sum().item() == pytest.approx(galaxy.sum().item(), rel=0.02)
    # The centre stays at the centre: the peak pixels of the upsampled image are central.
    peak = np.unravel_index(up[0, 0].argmax().item(), (136, 136))
    assert all(abs(p - 67.5) <= 1 for p in peak)


def test_resample_is_the_identity_on_the_same_grid():
    x = torch.randn(2, 3, 16, 16)
    assert resample(x, 16) is x


def test_check_grids_names_band_and_field_differences():
    check_grids(_stack(64, 0.396), _stack(136, 0.187))  # same 25.3" field
    with pytest.raises(ValidationError, match="band sets differ"):
        check_grids(_stack(64, 0.396), _stack(136, 0.187, ("r", "i")))
    with pytest.raises(ValidationError, match="fields of view differ"):
        check_grids(_stack(64, 0.396), _stack(64, 0.187))


def test_scaler_round_trips_and_puts_noise_near_unit_scale():
    rng = np.random.default_rng(0)
    images = rng.normal(0, [0.1, 2.0], (200, 16, 16, 2)).transpose(0, 3, 1, 2)
    scaler = PixelScaler.fit(images)
    assert scaler.noise == pytest.approx((0.1, 2.0), rel=0.05)
    x = torch.from_numpy(images).float()
    y = scaler.forward(x)
    # Noise of one σ maps to log(2) ≈ 0.69 in both bands alike.
    assert y[:, 0].abs().median().item() == pytest.approx(y[:, 1].abs().median().item(), rel=0.05)
    assert torch.allclose(scaler.inverse(y), x, rtol=1e-4, atol=1e-6)


def test_scaler_refuses_bad_noise_and_wrong_band_count():
    with pytest.raises(ValidationError, match="positive"):
        PixelScaler((1.0, 0.0))
    with pytest.raises(ValidationError, match=r"\(B, 2, H, W\)"):
        PixelScaler((1.0, 1.0)).forward(torch.zeros(1, 3, 4, 4))


def test_check_finite_names_the_galaxy_and_band():
    images = np.zeros((3, 2, 4, 4))
    images[2, 1, 0, 0] = np.nan
    with pytest.raises(ValidationError, match=r"id 12 \(row 2\), band index 1"):
        check_finite(images, "file.h5: sdss images", ids=[10, 11, 12])
