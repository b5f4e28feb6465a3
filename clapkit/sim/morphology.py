"""Bulge + disk morphology tied to each galaxy's SED and mass.

- **Bulge fraction** follows the SED type: the r-band bulge-to-total ratio rises with the
  rest-frame u − r colour, from disk-dominated blue galaxies to bulge-dominated red ones
  (Strateva et al. 2001 put the colour divide at u − r ≈ 2.2).
- **Bulge and disk SEDs**: the bulge takes its light only from kcorrect's old templates
  (:func:`~clapkit.sim.seds.old_templates`), the disk keeps the rest, so bulges are redder
  than disks and images carry colour gradients. The sum is the galaxy's fitted SED.
- **Sizes** from the size–mass relations of Shen et al. (2003, MNRAS 343, 978; eqs. 17–19,
  their Table 1 with H0 = 70): the early-type relation for bulges, the late-type relation
  for disks, each with its log-normal scatter; angular sizes from the angular-diameter
  distance.
- **Shapes**: random inclinations (cos i uniform) of disks with intrinsic thickness
  q0 = 0.2 (Giovanelli et al. 1994); bulge axis ratios around 0.8; one position angle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from clapkit.sim.seds import COSMOLOGY, band_fluxes, kcorrect_model, observed_coeffs, old_templates

#: Rest-frame u − r where the bulge fraction reaches one half.
COLOUR_DIVIDE = 2.2
COLOUR_WIDTH = 0.25
BULGE_FRACTION_SCATTER = 0.1
MAX_BULGE_FRACTION = 0.95
DISK_THICKNESS = 0.2
#: Shen et al. (2003) size–mass relations, R50 in kpc for M* in M⊙.
EARLY_A, EARLY_B = 0.56, 2.88e-6
LATE_ALPHA, LATE_BETA, LATE_GAMMA, LATE_M0 = 0.14, 0.39, 0.10, 3.98e10
EARLY_SIGMA = (0.45, 0.27)
LATE_SIGMA = (0.47, 0.34)
MIN_HLR_ARCSEC = 0.05
ARCSEC_PER_RADIAN = 206264.806


@dataclass(frozen=True)
class Morphology:
    """Structure of N galaxies; sizes in arcsec, angles in radians."""

    restframe_u_r: NDArray[np.float64]
    bulge_fraction: NDArray[np.float64]  # r-band flux fraction in the bulge
    bulge_intrinsic: NDArray[np.float64]  # (N, 5) kcorrect intrinsic coefficients
    disk_intrinsic: NDArray[np.float64]  # (N, 5)
    bulge_hlr_kpc: NDArray[np.float64]
    disk_hlr_kpc: NDArray[np.float64]
    bulge_hlr: NDArray[np.float64]
    disk_hlr: NDArray[np.float64]
    bulge_q: NDArray[np.float64]
    disk_q: NDArray[np.float64]
    inclination: NDArray[np.float64]
    position_angle: NDArray[np.float64]


def restframe_u_r(intrinsic: NDArray[np.float64], z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rest-frame u − r (AB) of SEDs given by intrinsic coefficients.

    Examples
    --------
    >>> restframe_u_r(np.array([[1.0, 0, 0, 0, 0]]), np.array([0.1])) > 2.2  # the oldest template
    array([ True])
    """
    model = kcorrect_model("sdss")
    coeffs = observed_coeffs(intrinsic, z).astype(np.float32)
    rest = np.asarray(model.reconstruct(redshift=np.zeros(z.size, np.float32), coeffs=coeffs))
    return -2.5 * np.log10(rest[:, 0] / rest[:, 2])


def size_early_kpc(mass: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median R50 (kpc) of early-type galaxies of stellar mass ``mass`` (Shen et al. 2003)."""
    return EARLY_B * mass**EARLY_A


def size_late_kpc(mass: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median R50 (kpc) of late-type galaxies of stellar mass ``mass`` (Shen et al. 2003)."""
    return LATE_GAMMA * mass**LATE_ALPHA * (1 + mass / LATE_M0) ** (LATE_BETA - LATE_ALPHA)


def size_scatter(mass: NDArray[np.float64], sigmas: tuple[float, float]) -> NDArray[np.float64]:
    """Scatter in ln R50 at fixed mass, σ2 + (σ1 − σ2) / (1 + (M/M0)²)."""
    high, low = sigmas
    return low + (high - low) / (1 + (mass / LATE_M0) ** 2)


def angular_size_arcsec(
    size_kpc: NDArray[np.float64], z: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Angle subtended by a physical size at redshift z (angular-diameter distance)."""
    distance_kpc = COSMOLOGY.angular_diameter_distance(z).to_value("kpc")
    return size_kpc / distance_kpc * ARCSEC_PER_RADIAN


def disk_axis_ratio(inclination: NDArray[np.float64]) -> NDArray[np.float64]:
    """Projected axis ratio of an oblate disk of thickness q0 seen at ``inclination``."""
    cos_i = np.cos(inclination)
    return np.sqrt(cos_i**2 * (1 - DISK_THICKNESS**2) + DISK_THICKNESS**2)


def draw_morphology(
    z: NDArray[np.float64],
    intrinsic: NDArray[np.float64],
    log_mstar: NDArray[np.float64],
    rng: np.random.Generator,
) -> Morphology:
    """Draw the bulge/disk structure of galaxies with given redshifts, SEDs and masses.

    Parameters
    ----------
    z : numpy.ndarray, shape (N,)
        Redshifts.
    intrinsic : numpy.ndarray, shape (N, 5)
        kcorrect intrinsic coefficients of each galaxy's SED.
    log_mstar : numpy.ndarray, shape (N,)
        Stellar masses (log M☉).
    rng : numpy.random.Generator
        Source of the draws.

    Returns
    -------
    Morphology

    Examples
    --------
    >>> m = draw_morphology(np.array([0.1]), np.array([[1.0, 0.1, 0.1, 1.0, 0.1]]), np.array([10.8]),
    ...                     np.random.default_rng(0))
    >>> bool(0 <= m.bulge_fraction[0] <= 1), bool(m.disk_q[0] >= 0.2)
    (True, True)
    """
    n = z.size
    colour = restframe_u_r(intrinsic, z)
    target = 1 / (1 + np.exp(-(colour - COLOUR_DIVIDE) / COLOUR_WIDTH))
    target = np.clip(target + rng.normal(0, BULGE_FRACTION_SCATTER, n), 0.0, MAX_BULGE_FRACTION)
    # The bulge takes a share of the old templates' light; how much sets its r-band fraction.
    old_part = intrinsic * old_templates()[None, :]
    r_total = band_fluxes("sdss", z, observed_coeffs(intrinsic, z))[:, 2]
    r_old = band_fluxes("sdss", z, observed_coeffs(old_part, z))[:, 2]
    share = np.clip(np.divide(target * r_total, r_old, out=np.zeros(n), where=r_old > 0), 0.0, 1.0)
    bulge_intrinsic = old_part * share[:, None]
    disk_intrinsic = intrinsic - bulge_intrinsic
    bulge_fraction = share * r_old / r_total

    mass = 10**log_mstar
    bulge_kpc = size_early_kpc(mass) * np.exp(rng.normal(0, 1, n) * size_scatter(mass, EARLY_SIGMA))
    disk_kpc = size_late_kpc(mass) * np.exp(rng.normal(0, 1, n) * size_scatter(mass, LATE_SIGMA))
    inclination = np.arccos(rng.uniform(0, 1, n))
    return Morphology(
        restframe_u_r=colour,
        bulge_fraction=bulge_fraction,
        bulge_intrinsic=bulge_intrinsic,
        disk_intrinsic=disk_intrinsic,
        bulge_hlr_kpc=bulge_kpc,
        disk_hlr_kpc=disk_kpc,
        bulge_hlr=np.maximum(angular_size_arcsec(bulge_kpc, z), MIN_HLR_ARCSEC),
        disk_hlr=np.maximum(angular_size_arcsec(disk_kpc, z), MIN_HLR_ARCSEC),
        bulge_q=np.clip(rng.normal(0.8, 0.1, n), 0.5, 1.0),
        disk_q=disk_axis_ratio(inclination),
        inclination=inclination,
        position_angle=rng.uniform(0, np.pi, n),
    )


def mean_log_inverse_axis_ratio(n_samples: int = 200_001) -> float:
    """<log10(1/q)> of disks over random orientations (the reference of disk dust)."""
    cos_i = (np.arange(n_samples) + 0.5) / n_samples
    return float(np.mean(np.log10(1 / disk_axis_ratio(np.arccos(cos_i)))))
