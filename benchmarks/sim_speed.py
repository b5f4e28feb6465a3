"""Paired rendering throughput of the mock survey: the fast renderer against the naive one.

Renders ``n`` random bulge + disk galaxies in both instruments (``sdss`` 64×64 and
``cfhtls`` 136×136, five bands each, sky and Poisson noise included) with
:func:`clapkit.sim.render.render`, and a subsample of ``naive_n`` of the same galaxies
with :func:`clapkit.sim.render.render_naive` (one GalSim ``drawImage`` per galaxy, band
and component), both on the same pool of worker processes, each task a chunk of
galaxies rendered in both instruments. The pool is warmed first (imports, PSF caches,
compiled kernels), so the timings are of rendering alone. Prints JSON: paired galaxies
per second for each renderer and their ratio.

Galaxies: half-light radii uniform in 0.3–4″, axis ratios in 0.2–1, position angles and
sub-arcsecond offsets uniform, and per band bulge and disk fluxes log-uniform in 1–1000
nanomaggies.

Goals: ≥ 100 paired galaxies per second on a 2-core machine, and ≥ 3× the naive
renderer.

Usage: ``python benchmarks/sim_speed.py [--n 1000] [--naive-n 100] [--workers W]
[--seed 0] [--out FILE]``.
"""

from __future__ import annotations

import os

# One process per core: keep the libraries in each worker from starting threads.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
from _report import emit  # noqa: E402

import clapkit  # noqa: E402
from clapkit.sim.instruments import INSTRUMENTS, instrument  # noqa: E402
from clapkit.sim.render import Components, render, render_naive  # noqa: E402

GOALS = {"paired_galaxies_per_second": 100.0, "speedup_vs_naive": 3.0}


def make_galaxies(n: int, seed: int) -> dict[str, Components]:
    """The same ``n`` random galaxies, with fluxes in each instrument's bands."""
    rng = np.random.default_rng(seed)
    shapes = {
        "bulge_hlr": rng.uniform(0.3, 4.0, n),
        "disk_hlr": rng.uniform(0.3, 4.0, n),
        "bulge_q": rng.uniform(0.2, 1.0, n),
        "disk_q": rng.uniform(0.2, 1.0, n),
        "position_angle": rng.uniform(0.0, np.pi, n),
        "offset_x": rng.uniform(-0.5, 0.5, n),
        "offset_y": rng.uniform(-0.5, 0.5, n),
    }
    galaxies = {}
    for name in INSTRUMENTS:
        n_bands = len(instrument(name).bands)
        fluxes = 10.0 ** rng.uniform(0.0, 3.0, (2, n, n_bands))
        galaxies[name] = Components(bulge_flux=fluxes[0], disk_flux=fluxes[1], **shapes)
    return galaxies


def render_pair(task: tuple[str, dict[str, Components], int]) -> int:
    """Render one chunk in both instruments with noise; return the galaxy count.

    Only the count goes back: shipping the images to the parent would time pickling.
    """
    renderer, galaxies, seed = task
    for offset, (name, components) in enumerate(galaxies.items()):
        camera = instrument(name)
        if renderer == "fast":
            images = render(components, camera, seed + offset)
        else:
            images = render_naive(components, camera, seed + offset, noise=True)
        assert images.shape[:2] == (len(components), len(camera.bands))
    return len(next(iter(galaxies.values())))


def chunks(galaxies: dict[str, Components], size: int, renderer: str, seed: int):
    """Tasks of ``size`` galaxies each, every one rendered in both instruments."""
    n = len(galaxies[INSTRUMENTS[0]])
    for k, start in enumerate(range(0, n, size)):
        index = slice(start, min(start + size, n))
        yield renderer, {name: c.take(index) for name, c in galaxies.items()}, seed + 2 * k


def paired_rate(pool, galaxies, renderer: str, workers: int, seed: int) -> tuple[float, float]:
    """Paired galaxies per second and wall seconds for rendering every galaxy."""
    n = len(galaxies[INSTRUMENTS[0]])
    # A few chunks per worker: the load balances and the per-task overhead stays small.
    size = max(1, math.ceil(n / (4 * workers)))
    start = time.perf_counter()
    done = sum(pool.map(render_pair, chunks(galaxies, size, renderer, seed)))
    seconds = time.perf_counter() - start
    assert done == n
    return n / seconds, seconds


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="galaxies for the fast renderer")
    parser.add_argument("--naive-n", type=int, default=100, help="galaxies for the naive one")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)

    galaxies = make_galaxies(args.n, args.seed)
    subsample = {name: c.take(slice(0, args.naive_n)) for name, c in galaxies.items()}
    # Warm up before the workers fork, so they inherit the PSF k-images, the compiled
    # kernel and GalSim's profile tables; then once more in each worker.
    warm = make_galaxies(args.workers, args.seed + 1)
    for renderer in ("fast", "naive"):
        render_pair(next(chunks(warm, 1, renderer, 0)))
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for renderer in ("fast", "naive"):
            list(pool.map(render_pair, chunks(warm, 1, renderer, 0)))
        fast_rate, fast_seconds = paired_rate(pool, galaxies, "fast", args.workers, args.seed)
        naive_rate, naive_seconds = paired_rate(pool, subsample, "naive", args.workers, args.seed)

    result = {
        "benchmark": "sim_speed",
        "n": args.n,
        "naive_n": len(subsample[INSTRUMENTS[0]]),
        "workers": args.workers,
        "paired_galaxies_per_second": round(fast_rate, 2),
        "naive_paired_galaxies_per_second": round(naive_rate, 3),
        "speedup_vs_naive": round(fast_rate / naive_rate, 1),
        "seconds": round(fast_seconds, 2),
        "naive_seconds": round(naive_seconds, 2),
        "instruments": {
            name: {"stamp": instrument(name).stamp_size, "bands": len(instrument(name).bands)}
            for name in INSTRUMENTS
        },
        "goals": GOALS,
        "goals_met": fast_rate >= GOALS["paired_galaxies_per_second"]
        and fast_rate / naive_rate >= GOALS["speedup_vs_naive"],
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "clapkit": clapkit.__version__,
    }
    return emit(result, args.out)


if __name__ == "__main__":
    main()
