"""Simulate a survey: catalog with known truth, and images in one or more instruments.

Galaxies are made in chunks of :data:`CHUNK_SIZE`. Chunk ``k`` of a survey with seed ``s``
draws all its randomness from ``np.random.SeedSequence(s, spawn_key=(k,))``, so chunks
are independent, can run in any process, and any chunk can be regenerated alone; the
same seed gives bit-identical output whatever the number of workers, and a smaller
survey is a prefix of a larger one with the same seed.

Inside a chunk: draw galaxies from the population prior, give them morphology, dust and
fluxes, observe their SDSS photometry with noise, keep those that pass the SDSS
main-sample selection (extinction-corrected Petrosian r < 17.77) until the chunk is
full, then compute CFHTLS and WISE photometry and render the images.

Besides one stack per instrument, a survey can hold *repeat* stacks (:data:`REPEATS`):
``sdss_repeat`` is a second SDSS exposure of every galaxy, the same noiseless stamp with
an independent noise realisation, which is what an SDSS→SDSS translation should be
compared with (otherwise the control task would be the identity).

Observing conditions (``observing``): ``"fixed"`` (the default) observes every galaxy
with each instrument's nominal PSF and sky; ``"varying"`` gives each galaxy its own
seeing and sky per instrument (:mod:`clapkit.sim.conditions`), records them in the
catalog (``psf_fwhm_<instrument>_<band>``, arcsec; ``sky_<instrument>_<band>``, AB mag
per arcsec²), renders with them and scales the catalog photometry's noise by them. The
conditions come from a random stream of their own and the photometric noise reuses the
same unit deviates, so a varying survey holds the same galaxies as the fixed one with
the same seed. One simplification keeps it so: the SDSS main-sample selection is made
on the photometry under *nominal* conditions (the per-galaxy noise differs from it by
less than 0.01 mag near the cut), so the same galaxies pass in both modes. The repeat
stack (``sdss_repeat``) shares the SDSS stack's conditions: the same stamp, new noise.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from tqdm.auto import tqdm

import clapkit
from clapkit.checks import check_int
from clapkit.data import DEFAULT_FRACTIONS, GalaxySet, GalaxySetWriter, ImageStack
from clapkit.errors import ValidationError
from clapkit.sim.conditions import (
    CONDITION_INSTRUMENTS,
    check_observing,
    condition_columns,
    draw_conditions,
    per_band,
)
from clapkit.sim.dust import disk_attenuation, galactic_extinction
from clapkit.sim.instruments import INSTRUMENTS, NANOMAGGY_ZEROPOINT, instrument
from clapkit.sim.morphology import draw_morphology, mean_log_inverse_axis_ratio
from clapkit.sim.on_dask import check_dask, results_on_dask
from clapkit.sim.photometry import component_fluxes, magnitudes, observe, observe_deviates
from clapkit.sim.population import draw_population, population_prior
from clapkit.sim.render import Components, add_noise, render
from clapkit.sim.seds import BAND_NAMES, BAND_SETS, kcorrect_model
from clapkit.stopping import check_stop

CHUNK_SIZE = 256
PETROSIAN_R_LIMIT = 17.77
#: Candidates drawn per round while filling a chunk: ~95% pass the selection, because
#: the prior is itself a selected sample, so a small margin over the need suffices.
_MARGIN = 1.15
#: Galaxy centroids scatter around the stamp centre by this much (arcsec, per axis).
CENTROID_SCATTER = 0.2
#: Catalog column prefix of each band set's magnitudes: SDSS bands keep the plain names
#: of the real catalog (mag_r), the others are qualified (mag_cfhtls_r, mag_w1).
COLUMN_PREFIX = {"sdss": "", "cfhtls": "cfhtls_", "wise": ""}
#: Repeat stacks: another noise realisation of the named instrument's noiseless stamps.
REPEATS = {"sdss_repeat": "sdss"}
#: Every image stack a survey can hold, in the order stacks are stored. Each draws its
#: noise from its own child seed; repeats come last so that adding them left the other
#: stacks' seeds, and hence their pixels, unchanged.
STACKS = (*INSTRUMENTS, *REPEATS)


def camera_of(stack: str) -> str:
    """The instrument that took the images of ``stack`` (``"sdss_repeat"`` → ``"sdss"``)."""
    return REPEATS.get(stack, stack)


def dust_strength(log_mstar: np.ndarray) -> np.ndarray:
    """γ_V of the disk inclination law: massive disks are dustier (Masters et al. 2010)."""
    return np.clip(1.0 + 0.5 * (log_mstar - 10.5), 0.2, 1.5)


@dataclass
class Chunk:
    """One chunk of a survey: its catalog columns and images per instrument."""

    columns: dict[str, np.ndarray]
    images: dict[str, np.ndarray]


def _seeds(seed: int, chunk: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed, spawn_key=(chunk,)).spawn(1 + len(STACKS))


def _select_galaxies(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    """Draw candidates until ``size`` pass the main-sample selection; their properties."""
    kept: list[dict[str, np.ndarray]] = []
    n_kept = 0
    n_drawn = 0
    mean_log_inverse_q = mean_log_inverse_axis_ratio()
    while n_kept < size:
        n_candidates = int((size - n_kept) * _MARGIN) + 8
        draw = draw_population(n_candidates, rng)
        morph = draw_morphology(draw.z, draw.intrinsic, draw.log_mstar, rng)
        gamma_v = dust_strength(draw.log_mstar)
        disk_dust = disk_attenuation(morph.disk_q, gamma_v, draw.z, "sdss", mean_log_inverse_q)
        bulge, disk = component_fluxes(
            "sdss",
            draw.z,
            morph.bulge_intrinsic,
            morph.disk_intrinsic,
            draw.ebv,
            disk_dust,
            draw.residual,
        )
        total = bulge + disk
        hlr = _mean_size(bulge[:, 2], disk[:, 2], morph.bulge_hlr, morph.disk_hlr)
        deviates = rng.normal(0.0, 1.0, total.shape)  # the draw observe() makes
        noisy, mags, magerrs = observe_deviates("sdss", total, hlr, deviates)
        extinction = galactic_extinction(draw.ebv, "sdss")
        petro_r = mags[:, 2] - extinction[:, 2] + draw.petro_offset[:, 2]
        passed = np.flatnonzero(petro_r < PETROSIAN_R_LIMIT)
        n_drawn += n_candidates
        columns = {
            "source_index": draw.source,
            "z": draw.z,
            "log_mstar": draw.log_mstar,
            "ebv": draw.ebv,
            "restframe_u_r": morph.restframe_u_r,
            **{
                f"sed_coeff_{k}": column
                for k, column in enumerate(
                    (draw.intrinsic / draw.intrinsic.sum(axis=1, keepdims=True)).T
                )
            },
            "bulge_fraction": morph.bulge_fraction,
            "bulge_hlr_kpc": morph.bulge_hlr_kpc,
            "disk_hlr_kpc": morph.disk_hlr_kpc,
            "bulge_hlr": morph.bulge_hlr,
            "disk_hlr": morph.disk_hlr,
            "hlr": hlr,
            "bulge_q": morph.bulge_q,
            "disk_q": morph.disk_q,
            "inclination": np.degrees(morph.inclination),
            "position_angle": np.degrees(morph.position_angle),
            "disk_gamma_v": gamma_v,
            "disk_av": gamma_v * (np.log10(1 / morph.disk_q) - mean_log_inverse_q),
            "_bulge_intrinsic": morph.bulge_intrinsic,
            "_disk_intrinsic": morph.disk_intrinsic,
            "_petro_offset": draw.petro_offset,
            "_residual": draw.residual,
            "_sdss": np.stack([bulge, disk, noisy, mags, magerrs, extinction], axis=1),
            "_sdss_deviates": deviates,
        }
        kept.append({key: value[passed] for key, value in columns.items()})
        n_kept += passed.size
    merged = {key: np.concatenate([part[key] for part in kept])[:size] for key in kept[0]}
    merged["_n_drawn"] = np.array(n_drawn)
    merged["_n_passed"] = np.array(n_kept)
    return merged


def _mean_size(bulge_flux, disk_flux, bulge_hlr, disk_hlr):
    """Flux-weighted half-light radius of the two components (for aperture noise)."""
    total = np.maximum(bulge_flux + disk_flux, 1e-30)
    return (bulge_flux * bulge_hlr + disk_flux * disk_hlr) / total


def _draw_splits(seed: int, chunk: int, size: int) -> np.ndarray:
    """train/valid/test labels in :data:`clapkit.data.DEFAULT_FRACTIONS` proportions.

    Drawn per galaxy from a stream of their own (seeded by the survey seed and the
    chunk), so every other column is unchanged and a smaller survey stays a prefix of a
    larger one; the counts are binomial rather than exact (use
    :meth:`GalaxySet.with_splits` for exact counts).
    """
    names = list(DEFAULT_FRACTIONS)
    cuts = np.cumsum([DEFAULT_FRACTIONS[name] for name in names])
    u = np.random.default_rng([seed, chunk, 0x5B117]).random(size)
    return np.asarray(names)[np.minimum(np.searchsorted(cuts, u, side="right"), len(names) - 1)]


def simulate_chunk(
    seed: int,
    chunk: int,
    instruments: Sequence[str] = INSTRUMENTS,
    size: int = CHUNK_SIZE,
    observing: str = "fixed",
) -> Chunk:
    """Generate chunk ``chunk`` of the survey with seed ``seed``.

    Parameters
    ----------
    seed : int
        The survey's seed.
    chunk : int
        The chunk's index; chunk i of seed s is the same whoever draws it.
    instruments : sequence of str
        Image stacks to render; none (``()``) for the catalog alone, which is the same
        catalog (rendering draws from random streams of its own).
    size : int
        Galaxies per chunk (ids of chunk ``k`` start after ``k * size``).
    observing : str
        ``"fixed"`` (nominal conditions) or ``"varying"`` (per-galaxy seeing and sky,
        recorded as catalog columns); see the module docstring.

    Returns
    -------
    Chunk

    Examples
    --------
    >>> part = simulate_chunk(1, 0, instruments=("sdss",), size=4)
    >>> part.images["sdss"].shape, bool(np.all(part.columns["petromag_r"] < 17.77))
    ((4, 5, 64, 64), True)
    """
    varying = check_observing(observing) == "varying"
    catalog_seed, *render_seeds = _seeds(seed, chunk)
    rng = np.random.default_rng(catalog_seed)
    g = _select_galaxies(rng, size)
    bulge_sdss, disk_sdss, noisy_sdss, mags_sdss, magerr_sdss, extinction_sdss = np.moveaxis(
        g.pop("_sdss"), 1, 0
    )
    columns = {key: value for key, value in g.items() if not key.startswith("_")}
    # (fwhm, sky) per instrument, each (size, bands); None: the nominal ones.
    seen = dict.fromkeys(CONDITION_INSTRUMENTS, (None, None))
    if varying:
        conditions = draw_conditions(seed, chunk, size)
        columns.update(conditions)
        seen = {name: per_band(conditions, instrument(name)) for name in CONDITION_INSTRUMENTS}
        # The same deviates as the selection's photometry, under this galaxy's conditions.
        noisy_sdss, mags_sdss, magerr_sdss = observe_deviates(
            "sdss", bulge_sdss + disk_sdss, columns["hlr"], g["_sdss_deviates"], *seen["sdss"]
        )
    # From size, not CHUNK_SIZE: a Dask worker computes chunks of the size it is sent.
    columns["id"] = chunk * size + np.arange(size, dtype=np.int64) + 1
    columns["split"] = _draw_splits(seed, chunk, size)
    columns["offset_x"] = rng.normal(0.0, CENTROID_SCATTER, size)
    columns["offset_y"] = rng.normal(0.0, CENTROID_SCATTER, size)
    fluxes = {"sdss": (bulge_sdss, disk_sdss)}
    observed = {"sdss": (noisy_sdss, mags_sdss, magerr_sdss, extinction_sdss)}
    mean_log_inverse_q = mean_log_inverse_axis_ratio()
    for band_set in ("cfhtls", "wise"):
        dust = disk_attenuation(
            columns["disk_q"], columns["disk_gamma_v"], columns["z"], band_set, mean_log_inverse_q
        )
        bulge, disk = component_fluxes(
            band_set,
            columns["z"],
            g["_bulge_intrinsic"],
            g["_disk_intrinsic"],
            columns["ebv"],
            dust,
            g["_residual"],
        )
        fluxes[band_set] = (bulge, disk)
        if band_set in seen:
            noisy, mags, magerrs = observe_deviates(
                band_set,
                bulge + disk,
                columns["hlr"],
                rng.normal(0.0, 1.0, bulge.shape),  # the draw observe() makes
                *seen[band_set],
            )
        else:
            noisy, mags, magerrs = observe(band_set, bulge + disk, columns["hlr"], rng)
        observed[band_set] = (noisy, mags, magerrs, galactic_extinction(columns["ebv"], band_set))
    for band_set, (noisy, mags, magerrs, extinction) in observed.items():
        prefix = COLUMN_PREFIX[band_set]
        true_mags = magnitudes(band_set, fluxes[band_set][0] + fluxes[band_set][1])
        for b, band in enumerate(BAND_NAMES[band_set]):
            # Magnitudes are corrected for Galactic extinction, as in the real SDSS catalog.
            columns[f"true_mag_{prefix}{band}"] = true_mags[:, b] - extinction[:, b]
            columns[f"mag_{prefix}{band}"] = mags[:, b] - extinction[:, b]
            columns[f"magerr_{prefix}{band}"] = magerrs[:, b]
            columns[f"extinction_{prefix}{band}"] = extinction[:, b]
            columns[f"flux_{prefix}{band}"] = noisy[:, b]
    for b, band in enumerate(BAND_NAMES["sdss"]):
        columns[f"petromag_{band}"] = columns[f"mag_{band}"] + g["_petro_offset"][:, b]
    columns["bulge_sersic_n"] = np.full(size, 4.0)
    columns["disk_sersic_n"] = np.full(size, 1.0)
    noiseless = {}
    for name in dict.fromkeys(camera_of(stack) for stack in instruments):
        bulge, disk = fluxes[name]
        components = Components(
            bulge_flux=bulge,
            disk_flux=disk,
            bulge_hlr=columns["bulge_hlr"],
            disk_hlr=columns["disk_hlr"],
            bulge_q=columns["bulge_q"],
            disk_q=columns["disk_q"],
            position_angle=np.radians(columns["position_angle"]),
            offset_x=columns["offset_x"],
            offset_y=columns["offset_y"],
        )
        noiseless[name] = render(
            components, instrument(name), None, noise=False, psf_fwhm=seen[name][0]
        )
    images = {}
    for name, render_seed in zip(STACKS, render_seeds, strict=True):
        if name in instruments:
            camera = instrument(camera_of(name))
            # The same child seed as a one-step render(), so the pixels do not depend on
            # whether a repeat of the same instrument was asked for too.
            images[name] = add_noise(
                noiseless[camera_of(name)],
                camera,
                np.random.default_rng(render_seed),
                seen[camera.name][1],
            )
    columns["_n_drawn"] = g["_n_drawn"]
    columns["_n_passed"] = g["_n_passed"]
    return Chunk(columns, images)


#: Units and descriptions of the truth columns (magnitude columns are described by pattern).
COLUMN_INFO = {
    "id": ("", "galaxy id, unique in the survey"),
    "split": ("", "train / valid / test, drawn from the id and the survey seed"),
    "z": ("", "true (spectroscopic) redshift"),
    "source_index": (
        "",
        "row of the real SDSS galaxy (kcorrect prior) this galaxy was resampled from",
    ),
    "log_mstar": ("dex(solMass)", "log10 stellar mass (kcorrect mremain, Planck18)"),
    "ebv": ("mag", "Galactic reddening E(B-V), SFD scale"),
    "restframe_u_r": ("mag", "rest-frame u - r colour of the SED (SED-type proxy)"),
    **{
        f"sed_coeff_{k}": (
            "",
            f"share of kcorrect template {k} in the SED (intrinsic coefficients, sum 1)",
        )
        for k in range(5)
    },
    "bulge_fraction": ("", "fraction of the r-band flux in the bulge (B/T)"),
    "bulge_hlr_kpc": ("kpc", "bulge half-light radius (Shen et al. 2003 early-type relation)"),
    "disk_hlr_kpc": ("kpc", "disk half-light radius (Shen et al. 2003 late-type relation)"),
    "bulge_hlr": ("arcsec", "bulge half-light radius on the sky"),
    "disk_hlr": ("arcsec", "disk half-light radius on the sky"),
    "hlr": ("arcsec", "r-band flux-weighted mean half-light radius of bulge and disk"),
    "bulge_q": ("", "bulge axis ratio"),
    "disk_q": ("", "disk projected axis ratio"),
    "inclination": ("deg", "disk inclination (0 face-on, 90 edge-on)"),
    "position_angle": ("deg", "position angle of both components"),
    "disk_gamma_v": ("mag", "gamma_V of the disk dust law A_V = gamma_V log10(1/q)"),
    "disk_av": ("mag", "disk V-band attenuation relative to an average inclination"),
    "offset_x": ("arcsec", "centroid offset from the stamp centre, x"),
    "offset_y": ("arcsec", "centroid offset from the stamp centre, y"),
    "bulge_sersic_n": ("", "bulge Sersic index"),
    "disk_sersic_n": ("", "disk Sersic index"),
    # Only in surveys simulated with observing="varying".
    **condition_columns(),
}


def _catalog(columns: dict[str, np.ndarray]) -> Table:
    """The catalog with its columns in a readable order, units and descriptions."""
    order = ["id", *[key for key in COLUMN_INFO if key != "id"]]
    for kind in ("mag", "magerr", "petromag", "true_mag", "extinction", "flux"):
        for band_set in BAND_SETS:
            order += [f"{kind}_{COLUMN_PREFIX[band_set]}{band}" for band in BAND_NAMES[band_set]]
    order = [key for key in order if key in columns]
    table = Table()
    for key in order:
        unit, description = COLUMN_INFO.get(key, _photometry_info(key))
        table[key] = columns[key]
        table[key].description = description
        if unit and not unit.startswith("dex"):  # "mag / arcsec2" parses as an astropy unit
            table[key].unit = unit
    return table


def _photometry_info(key: str) -> tuple[str, str]:
    kind, _, band = key.partition("_")
    if key.startswith("true_mag_"):
        return "mag", f"noiseless AB magnitude {key[9:]}, Galactic-extinction corrected"
    descriptions = {
        "mag": ("mag", f"observed asinh AB magnitude {band}, Galactic-extinction corrected"),
        "magerr": ("mag", f"1-sigma error of mag_{band}"),
        "extinction": ("mag", f"Galactic extinction in {band}"),
        "flux": ("", f"observed flux in {band}, nanomaggies, not extinction corrected"),
        "petromag": ("mag", f"Petrosian magnitude {band} (model + the source galaxy's offset)"),
    }
    return descriptions.get(kind, ("", key))


def _check_arguments(
    n: int,
    seed: int,
    instruments: Sequence[str],
    workers: int,
    images: bool = True,
    dask: Any = None,
    dask_workers: int | None = None,
) -> tuple[str, ...]:
    """The image stacks to render (none without ``images``), once every setting is valid."""
    check_int(n, "n")
    check_int(seed, "seed", minimum=0)
    check_int(workers, "workers")
    check_dask(dask, workers, dask_workers)
    if not isinstance(images, bool):
        raise ValidationError(f"images must be True or False, got {images!r}")
    instruments = tuple(instruments)
    unknown = [name for name in instruments if name not in STACKS]
    if unknown or not instruments or len(set(instruments)) != len(instruments):
        raise ValidationError(
            f"instruments must be distinct names among {STACKS}, got {list(instruments)}"
        )
    return instruments if images else ()


def _prepare_parent() -> None:
    """Build what every chunk needs, so that forked workers inherit it."""
    population_prior()
    for band_set in BAND_SETS:
        kcorrect_model(band_set)


def _run_chunk(task: tuple[int, int, tuple[str, ...], int, str]) -> Chunk:
    return simulate_chunk(*task)


def iter_chunks(
    n: int,
    seed: int,
    instruments: Sequence[str] = INSTRUMENTS,
    workers: int = 1,
    progress: bool = False,
    observing: str = "fixed",
    *,
    images: bool = True,
    dask: Any = None,
    dask_workers: int | None = None,
) -> Iterator[tuple[int, Chunk]]:
    """Yield ``(first_row, chunk)`` in order, truncating the last chunk to reach ``n``.

    Parameters
    ----------
    n : int
        Galaxies in all.
    seed : int
        The survey's seed.
    instruments : sequence of str
        Image stacks to render.
    workers : int
        Processes that render chunks in parallel.
    progress : bool
        Show a progress bar.
    observing : str
        ``"fixed"`` or ``"varying"`` observing conditions (:func:`simulate_chunk`).
    images : bool
        Render the image stacks; without, chunks hold the catalog alone.
    dask : str or distributed.Client, optional
        Compute the chunks on Dask (:mod:`clapkit.sim.on_dask`): ``"local"``, a
        scheduler address, or a client; ``workers`` must then be 1.
    dask_workers : int, optional
        Processes of a ``"local"`` Dask cluster (default: one per core).

    Yields
    ------
    (int, Chunk)
    """
    instruments = _check_arguments(n, seed, instruments, workers, images, dask, dask_workers)
    check_observing(observing)
    n_chunks = -(-n // CHUNK_SIZE)
    # The chunk size travels with each task: Dask workers do not see this module's
    # CHUNK_SIZE as the parent has it (tests shrink it).
    tasks = [(seed, k, instruments, CHUNK_SIZE, observing) for k in range(n_chunks)]
    resources = contextlib.ExitStack()
    pool = None
    if dask is not None:
        results = resources.enter_context(results_on_dask(dask, dask_workers, _run_chunk, tasks))
    elif workers == 1:
        results = map(_run_chunk, tasks)
    else:
        _prepare_parent()
        # fork: workers inherit the kcorrect models and the prior the parent built. A
        # Pool, not a ProcessPoolExecutor: an interrupted run must stop its workers at
        # once (Pool.terminate), not wait for their chunks or leave them running.
        context = multiprocessing.get_context("fork")
        pool = context.Pool(workers, initializer=_init_worker, initargs=(os.getpid(),))
        results = pool.imap(_run_chunk, tasks)
    bar = tqdm(total=n, desc="simulate", unit="gal", disable=not progress)
    finished = False
    try:
        for k, chunk in enumerate(results):
            check_stop()
            keep = min(CHUNK_SIZE, n - k * CHUNK_SIZE)
            if keep < CHUNK_SIZE:
                chunk = Chunk(
                    {key: v if key in _COUNTERS else v[:keep] for key, v in chunk.columns.items()},
                    {name: images[:keep] for name, images in chunk.images.items()},
                )
            bar.update(keep)
            yield k * CHUNK_SIZE, chunk
        finished = True
    finally:
        bar.close()
        if pool is not None:
            if finished:
                pool.close()
            else:  # an error, Ctrl-C, SIGTERM or an abandoned iterator
                pool.terminate()
            pool.join()
        resources.close()  # Dask: cancel the chunks in flight, close what was opened


def _init_worker(parent: int) -> None:
    """Set up a simulation worker: interruption is the parent's to handle, and a worker
    whose parent is gone stops.

    Ctrl-C reaches every process of the terminal's group: the workers ignore it and the
    parent, interrupted, terminates them (a worker dying on it would leave its chunk
    unanswered). SIGTERM is back to its default, which ``Pool.terminate`` relies on (the
    parent's handler, inherited by fork, would only raise inside the chunk). And if the
    parent is killed outright (``kill -9``), nobody terminates the workers: each watches
    its parent and exits when it is gone, instead of simulating on as an orphan.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="clapkit-parent-watch").start()


_COUNTERS = ("_n_drawn", "_n_passed")


def _merge_columns(
    chunks: list[dict[str, np.ndarray]],
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Catalog columns of consecutive chunks joined, and their selection counters summed."""
    columns = {
        key: np.concatenate([c[key] for c in chunks]) for key in chunks[0] if key not in _COUNTERS
    }
    counts = {key: int(sum(c[key] for c in chunks)) for key in _COUNTERS}
    return columns, counts


def _stack(name: str, images: np.ndarray) -> ImageStack:
    camera = instrument(camera_of(name))
    zero_points = (NANOMAGGY_ZEROPOINT,) * len(camera.bands)
    return ImageStack(images, camera.band_names, camera.pixel_scale, zero_points, "nanomaggy")


def _meta(
    n: int, seed: int, instruments: Sequence[str], counts: dict[str, int], observing: str
) -> dict:
    prior = population_prior()
    # Recorded only when not the default, so that a fixed survey's file is unchanged;
    # a file without the key was observed under fixed conditions.
    extra = {} if observing == "fixed" else {"observing": observing}
    return {
        "source": "clapkit mock survey",
        "clapkit_version": clapkit.__version__,
        "n": n,
        "seed": seed,
        "instruments": list(instruments),
        "chunk_size": CHUNK_SIZE,
        "selection": f"Petrosian r < {PETROSIAN_R_LIMIT} (extinction corrected)",
        "selection_efficiency": counts["_n_passed"] / max(counts["_n_drawn"], 1),
        "prior": {"n_real": prior.n_real, "n_excluded": prior.n_excluded},
        **extra,
    }


def simulate(
    n: int,
    seed: int,
    instruments: Sequence[str] = INSTRUMENTS,
    *,
    workers: int = 1,
    progress: bool = False,
    observing: str = "fixed",
    images: bool = True,
    dask: Any = None,
    dask_workers: int | None = None,
) -> GalaxySet:
    """Simulate ``n`` galaxies in memory (see :func:`simulate_to_file` for large surveys).

    Parameters
    ----------
    n : int
        Number of galaxies (after selection).
    seed : int
        Same seed, same survey, bit for bit.
    instruments : sequence of str
        Image stacks to render, among :data:`STACKS` (``"sdss"``, ``"cfhtls"`` and the
        second SDSS exposure ``"sdss_repeat"``); every galaxy is rendered in each
        (paired images).
    workers : int
        Processes to use.
    progress : bool
        Show a progress bar.
    observing : str
        ``"fixed"`` (default): every galaxy seen with the instruments' nominal PSF and
        sky. ``"varying"``: per-galaxy seeing and sky (:mod:`clapkit.sim.conditions`),
        recorded in ``psf_fwhm_<instrument>_<band>`` and ``sky_<instrument>_<band>``;
        the same galaxies as ``"fixed"`` with the same seed.
    images : bool
        ``False``: the catalog alone, much faster (no GalSim rendering); the catalog is
        the one the image run gives with the same seed, and ``instruments`` is ignored.
    dask : str or distributed.Client, optional
        Compute the chunks on a Dask cluster: ``"local"``, a scheduler address, or a
        client (:mod:`clapkit.sim.on_dask`); the same galaxies, bit for bit.
    dask_workers : int, optional
        Processes of a ``"local"`` Dask cluster (default: one per core).

    Examples
    --------
    >>> survey = simulate(3, seed=1, instruments=("sdss",))
    >>> len(survey), survey.instruments, "log_mstar" in survey.catalog.colnames
    (3, ['sdss'], True)
    >>> varying = simulate(3, seed=1, instruments=("sdss",), observing="varying")
    >>> bool(np.all(varying.catalog["z"] == survey.catalog["z"]))
    True
    >>> str(varying.catalog["sky_sdss_r"].unit)
    'mag / arcsec2'
    >>> catalog_only = simulate(3, seed=1, images=False)
    >>> catalog_only.instruments, bool(np.all(catalog_only.catalog["z"] == survey.catalog["z"]))
    ([], True)
    """
    chunks = iter_chunks(
        n,
        seed,
        instruments,
        workers,
        progress,
        observing,
        images=images,
        dask=dask,
        dask_workers=dask_workers,
    )
    with contextlib.closing(chunks):
        parts = list(chunks)
    columns, counts = _merge_columns([c.columns for _, c in parts])
    stacks = {
        name: _stack(name, np.concatenate([c.images[name] for _, c in parts]))
        for name in parts[0][1].images
    }
    return GalaxySet(_catalog(columns), stacks, _meta(n, seed, list(stacks), counts, observing))


def simulate_to_file(
    path: str | os.PathLike,
    n: int,
    seed: int,
    instruments: Sequence[str] = INSTRUMENTS,
    *,
    workers: int = 1,
    progress: bool = False,
    overwrite: bool = False,
    observing: str = "fixed",
    images: bool = True,
    dask: Any = None,
    dask_workers: int | None = None,
) -> Path:
    """Simulate ``n`` galaxies straight into a GalaxySet file, chunk by chunk.

    Memory stays bounded by a few chunks; the file appears under ``path`` only when
    complete (an interrupted run leaves nothing that loads).

    Parameters
    ----------
    path : path-like
        The GalaxySet file to write.
    n : int
        Galaxies to simulate.
    seed : int
        The survey's seed: same seed, same file.
    instruments : sequence of str
        Image stacks to render.
    workers : int
        Processes that render chunks in parallel.
    progress : bool
        Show a progress bar.
    overwrite : bool
        Replace an existing file.
    observing : str
        ``"fixed"`` or ``"varying"`` observing conditions, as in :func:`simulate`.
    images : bool
        ``False``: a catalog-only file (no image stacks), as in :func:`simulate`.
    dask : str or distributed.Client, optional
        Compute the chunks on a Dask cluster (``"local"``, a scheduler address, or a
        client); the file has the same bytes as the single-process one.
    dask_workers : int, optional
        Processes of a ``"local"`` Dask cluster (default: one per core).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from clapkit.atomic import check_writable

    _check_arguments(n, seed, instruments, workers, images, dask, dask_workers)
    check_observing(observing)
    check_writable(path, overwrite)
    chunk_columns = []
    writer = None
    chunks = iter_chunks(
        n,
        seed,
        instruments,
        workers,
        progress,
        observing,
        images=images,
        dask=dask,
        dask_workers=dask_workers,
    )
    # Closed on any way out, so an error stops the workers (or cancels the Dask chunks)
    # at once rather than when the generator is collected.
    try:
        with contextlib.closing(chunks):
            for start, chunk in chunks:
                if writer is None:
                    templates = {
                        name: _stack(name, block[:1]) for name, block in chunk.images.items()
                    }
                    writer = GalaxySetWriter(path, n, templates, overwrite=overwrite)
                writer.write_rows(start, chunk.images)
                chunk_columns.append(chunk.columns)
        columns, counts = _merge_columns(chunk_columns)
        # The stacks follow STACKS order whatever order was asked for; so does meta.
        writer.finish(_catalog(columns), _meta(n, seed, list(templates), counts, observing))
    finally:
        if writer is not None:
            writer.__exit__(None, None, None)
    return Path(path)


def split_unpaired(
    galaxies: GalaxySet, paired_fraction: float = 0.0, seed: int = 0
) -> dict[str, GalaxySet]:
    """Disjoint subsets for semi-supervised translation: paired and one-instrument sets.

    A ``paired_fraction`` of the galaxies keep both image stacks (``"paired"``); the rest
    are split in two halves, one keeping only the ``sdss`` stack and one only the
    ``cfhtls`` stack, so that no galaxy of an unpaired set is seen by both instruments.

    Examples
    --------
    >>> survey = simulate(8, seed=3)
    >>> parts = split_unpaired(survey, paired_fraction=0.25, seed=0)
    >>> {name: (len(part), part.instruments) for name, part in parts.items()}
    {'paired': (2, ['sdss', 'cfhtls']), 'sdss': (3, ['sdss']), 'cfhtls': (3, ['cfhtls'])}
    """
    if not 0.0 <= paired_fraction <= 1.0:
        raise ValidationError(f"paired_fraction must lie in [0, 1], got {paired_fraction}")
    missing = [name for name in INSTRUMENTS if name not in galaxies.stacks]
    if missing:
        raise ValidationError(f"unpaired subsets need both instruments; the set lacks {missing}")
    order = np.random.default_rng(seed).permutation(len(galaxies))
    n_paired = round(paired_fraction * len(galaxies))
    n_first = (len(galaxies) - n_paired + 1) // 2
    rows = {
        "paired": np.sort(order[:n_paired]),
        "sdss": np.sort(order[n_paired : n_paired + n_first]),
        "cfhtls": np.sort(order[n_paired + n_first :]),
    }
    subsets = {}
    for name, index in rows.items():
        part = galaxies[index]
        keep = INSTRUMENTS if name == "paired" else (name,)
        subsets[name] = GalaxySet(
            part.catalog,
            {key: part.stacks[key] for key in keep},
            {**part.meta, "subset": name, "paired_fraction": paired_fraction},
        )
    return subsets
