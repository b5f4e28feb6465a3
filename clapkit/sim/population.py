"""The galaxy population: drawn from kcorrect fits to the real SDSS main sample.

Every real galaxy of :func:`clapkit.data.sdss_catalog` with valid photometry gets its
kcorrect template coefficients (a fit to its extinction-corrected ugriz model fluxes) and
its stellar mass (``derived()["mremain"]``). New galaxies resample that empirical joint
distribution of (z, SED, M*) with a small perturbation:

- redshift: z × exp(N(0, 0.03)), a 3% change of distance (about 0.06 mag), kept inside
  the simulator's range;
- SED shape: each intrinsic coefficient × exp(N(0, 0.05)), so no two galaxies share a
  spectrum while the colour distribution is kept;
- luminosity (and mass with it): × 10^N(0, 0.03 dex).

The jitter in distance and luminosity is kept small because the prior is itself a
flux-limited sample: galaxies it pushes past the limit are cut again, while nothing
beyond the limit can come in, so a larger jitter would bias the sample bright.

The draw happens before the SDSS main-sample selection (Petrosian r < 17.77), which the
simulator applies to the new magnitudes. Galactic reddening comes from the same real
galaxy, and so does the offset between its Petrosian and model magnitudes.

Five templates do not fit every galaxy exactly: the fitted u magnitudes of the real
sample are about 0.07 mag too bright on average. Each real galaxy's fit residual
(observed − fitted magnitude per band, clipped to ±1 mag) travels with it, like its
Petrosian offset, and is applied to the simulated fluxes, so simulated colours keep the
real ones and not only what the templates can express.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from clapkit.data import sdss_catalog
from clapkit.data.sdss import ASINH_SOFTENING, SDSS_BANDS, asinh_magnitude
from clapkit.sim.disk_cache import disk_cached
from clapkit.sim.seds import (
    REDSHIFT_RANGE,
    kcorrect_model,
    luminosity_distance_mpc,
    observed_coeffs,
)

#: Perturbations of the resampling, documented in the module docstring.
REDSHIFT_JITTER = 0.03
SED_JITTER = 0.05
LUMINOSITY_JITTER_DEX = 0.03
#: Largest fit residual carried over (mag); beyond it the real photometry is suspect.
MAX_RESIDUAL = 1.0
#: The simulated redshift range; kcorrect's grid ends at REDSHIFT_RANGE[1].
Z_MIN, Z_MAX = 0.005, 0.7


@dataclass(frozen=True)
class PopulationPrior:
    """The real galaxies the population is drawn from (arrays of length M)."""

    z: NDArray[np.float64]
    intrinsic: NDArray[np.float64]  # (M, 5) kcorrect coefficients × d_L² (Mpc²)
    log_mstar: NDArray[np.float64]
    ebv: NDArray[np.float64]
    petro_offset: NDArray[np.float64]  # (M, 5) Petrosian − model magnitude per band
    residual: NDArray[np.float64]  # (M, 5) observed − fitted model magnitude per band
    n_real: int
    n_excluded: int

    def __len__(self) -> int:
        return self.z.size


@functools.lru_cache(maxsize=1)
@disk_cached
def population_prior() -> PopulationPrior:
    """Fit kcorrect to the real SDSS galaxies once per process.

    Galaxies without positive fluxes and inverse variances in all five bands, outside the
    simulator's redshift range, or whose fit gives no stellar mass are excluded and
    counted (``n_excluded``).

    Examples
    --------
    >>> prior = population_prior()
    >>> prior.n_real, len(prior) + prior.n_excluded
    (10000, 10000)
    """
    catalog = sdss_catalog().catalog
    z = np.asarray(catalog["z"], dtype=np.float64)
    extinction = np.column_stack([np.asarray(catalog[f"extinction_{b}"]) for b in SDSS_BANDS])
    flux = np.column_stack([np.asarray(catalog[f"modelflux_{b}"]) for b in SDSS_BANDS]) * 1e-9
    ivar = np.column_stack([np.asarray(catalog[f"modelflux_ivar_{b}"]) for b in SDSS_BANDS]) * 1e18
    # Fit the SED above the Milky Way's dust: deredden fluxes and their variances.
    deredden = 10 ** (0.4 * extinction)
    flux, ivar = flux * deredden, ivar / deredden**2
    usable = (
        np.asarray(catalog["flux_ok"], dtype=bool)
        & (z > REDSHIFT_RANGE[0])
        & (z < REDSHIFT_RANGE[1])
    )
    model = kcorrect_model("sdss")
    coeffs = np.zeros((z.size, model.templates.nsed))
    coeffs[usable] = model.fit_coeffs(
        redshift=z[usable].astype(np.float32),
        maggies=flux[usable].astype(np.float32),
        ivar=ivar[usable].astype(np.float32),
    )
    mass = np.zeros(z.size)
    mass[usable] = model.derived(
        redshift=z[usable].astype(np.float32), coeffs=coeffs[usable].astype(np.float32)
    )["mremain"]
    usable &= mass > 0
    petro = np.column_stack(
        [np.asarray(catalog[f"petromag_{b}"]) - np.asarray(catalog[f"mag_{b}"]) for b in SDSS_BANDS]
    )
    usable &= np.all(np.isfinite(petro), axis=1)
    fitted = np.zeros_like(flux)
    fitted[usable] = model.reconstruct(
        redshift=z[usable].astype(np.float32), coeffs=coeffs[usable].astype(np.float32)
    )
    fitted_mag = np.column_stack(
        [asinh_magnitude(fitted[:, k] * 1e9, ASINH_SOFTENING[b]) for k, b in enumerate(SDSS_BANDS)]
    )
    observed_mag = np.column_stack([np.asarray(catalog[f"mag_{b}"]) for b in SDSS_BANDS])
    residual = np.clip(observed_mag - fitted_mag, -MAX_RESIDUAL, MAX_RESIDUAL)
    return PopulationPrior(
        z=z[usable],
        intrinsic=coeffs[usable] * luminosity_distance_mpc(z[usable])[:, None] ** 2,
        log_mstar=np.log10(mass[usable]),
        ebv=np.asarray(catalog["ebv"], dtype=np.float64)[usable],
        petro_offset=petro[usable],
        residual=residual[usable],
        n_real=z.size,
        n_excluded=int((~usable).sum()),
    )


@dataclass(frozen=True)
class Draw:
    """Intrinsic properties of drawn galaxies (arrays of length N)."""

    source: NDArray[np.intp]  # index into the prior
    z: NDArray[np.float64]
    intrinsic: NDArray[np.float64]  # (N, 5)
    log_mstar: NDArray[np.float64]
    ebv: NDArray[np.float64]
    petro_offset: NDArray[np.float64]  # (N, 5)
    residual: NDArray[np.float64]  # (N, 5)

    @property
    def coeffs(self) -> NDArray[np.float64]:
        """Observed-frame kcorrect coefficients at each galaxy's redshift."""
        return observed_coeffs(self.intrinsic, self.z)

    def take(self, index: NDArray) -> Draw:
        """The galaxies at ``index``."""
        return Draw(*(getattr(self, name)[index] for name in self.__dataclass_fields__))


def draw_population(n: int, rng: np.random.Generator, prior: PopulationPrior | None = None) -> Draw:
    """Draw ``n`` galaxies from the perturbed empirical distribution (before selection).

    Examples
    --------
    >>> draw = draw_population(3, np.random.default_rng(0))
    >>> draw.z.shape, draw.intrinsic.shape
    ((3,), (3, 5))
    """
    prior = prior or population_prior()
    source = rng.integers(0, len(prior), n)
    z = prior.z[source]
    z = np.clip(z * np.exp(rng.normal(0.0, REDSHIFT_JITTER, n)), Z_MIN, Z_MAX)
    shape_jitter = np.exp(rng.normal(0.0, SED_JITTER, prior.intrinsic[source].shape))
    luminosity = 10 ** rng.normal(0.0, LUMINOSITY_JITTER_DEX, n)
    intrinsic = prior.intrinsic[source] * shape_jitter
    # Keep the total (luminosity) of the source, then apply the luminosity jitter.
    intrinsic *= (prior.intrinsic[source].sum(axis=1) / intrinsic.sum(axis=1) * luminosity)[:, None]
    # The mass is linear in the coefficients: shift it by the same factors.
    mass_ratio = _mass_per_intrinsic(intrinsic) / _mass_per_intrinsic(prior.intrinsic[source])
    return Draw(
        source=source,
        z=z,
        intrinsic=intrinsic,
        log_mstar=prior.log_mstar[source] + np.log10(mass_ratio),
        ebv=prior.ebv[source],
        petro_offset=prior.petro_offset[source],
        residual=prior.residual[source],
    )


@functools.lru_cache(maxsize=1)
def _template_masses() -> NDArray[np.float64]:
    """Stellar mass per unit intrinsic coefficient of each template (M⊙ Mpc⁻²)."""
    model = kcorrect_model("sdss")
    n = model.templates.nsed
    z = 0.05
    derived = model.derived(
        redshift=np.full(n, z, dtype=np.float32), coeffs=np.eye(n, dtype=np.float32)
    )
    return (
        np.asarray(derived["mremain"], dtype=np.float64)
        / luminosity_distance_mpc(np.array([z]))[0] ** 2
    )


def _mass_per_intrinsic(intrinsic: NDArray[np.float64]) -> NDArray[np.float64]:
    return intrinsic @ _template_masses()
