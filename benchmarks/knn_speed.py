"""Speed of CLAP's adaptive KNN against a straightforward implementation of the procedure.

Synthetic 16-d latents: four dimensions carry the redshift (``z / 0.1`` plus unit-scale
noise of 0.05…0.2), twelve are pure noise; redshifts follow an SDSS-like Gamma shape on
0–0.4. The full run fits :class:`clapkit.photoz.adaptive_knn.AdaptiveKNN` (k up to 2000 on
the 120-value grid, 180 output bins on 0–0.4) on ``--n-train`` galaxies and predicts
``--n-target``: ``seconds`` (fit + predict) and ``peak_memory_gb`` (``ru_maxrss``).

The neighbours are exact (:class:`clapkit.photoz.neighbours.NeighbourIndex`);
``neighbour_check`` compares, for ``--check`` targets of the full run, their neighbour
lists with a float64 brute force in NumPy (a stable argsort of all distances): the
fraction of identical lists and the recall at k_max.

In the same run, on a subsample of ``--sub-target`` targets and ``--sub-train`` training
galaxies, both implementations start from the same neighbour search (that cost is common
to both and counted in both) and the straightforward one then loops per galaxy and per k
in Python/NumPy, as the procedure is written: ``speedup_vs_straightforward`` is the ratio
of the wall times and ``identical_on_subsample`` says whether the chosen k and the PDFs
agree exactly. ``common_search_seconds_on_subsample`` times that shared search alone.
``cpu_seconds`` is the process CPU time of the full stage: well under ``threads`` times
``seconds`` means other work shared the machine.

Usage: ``python benchmarks/knn_speed.py [--n-train 400000] [--n-target 100000]
[--sub-train 20000] [--sub-target 2000] [--check 200] [--quick] [--seed 0] [--out FILE]``;
the defaults are the paper's scale; ``--quick`` is 40,000 training and 10,000 target
galaxies, subsample 10,000 / 2,000.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numba
import numpy as np
from _report import emit

import clapkit
from clapkit.metrics import histogram_pdfs
from clapkit.photoz.adaptive_knn import AdaptiveKNN, published_k_grid

EDGES = np.linspace(0.0, 0.4, 181)
N_PIT_BINS = 100


def make_latents(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` galaxies: (latent (n, 16) float32, z (n,))."""
    z = np.clip(rng.gamma(4.0, 0.025, n), 0.0, 0.4)
    noise = np.array([0.05, 0.1, 0.15, 0.2])
    informative = z[:, None] / 0.1 + rng.normal(0.0, 1.0, (n, 4)) * noise
    latent = np.hstack([informative, rng.normal(0.0, 1.0, (n, 12))])
    return latent.astype(np.float32), z


def straightforward(model: AdaptiveKNN, train_latent, train_z, target_latent):
    """The published procedure written per galaxy and per k, on the model's neighbours."""
    k_grid = model.k_grid
    n_k = k_grid.size
    # Neighbours: the same exact search as the fast path (its cost is common to both).
    pit_bin = np.empty((train_z.size, n_k), dtype=np.int64)
    for s in range(0, train_z.size, 5000):
        rows = np.arange(s, min(s + 5000, train_z.size))
        nb = model._pit_neighbours(train_latent[rows], rows)
        for row, j in enumerate(rows):
            for c, k in enumerate(k_grid):
                zn = train_z[nb[row, :k]]
                # PIT = halves / 2k exactly; its bin in integers, as the fast path does.
                halves = 2 * int(np.sum(zn < train_z[j])) + int(np.sum(zn == train_z[j]))
                pit_bin[j, c] = min(halves * N_PIT_BINS // (2 * int(k)), N_PIT_BINS - 1)
    target_nb = model.kneighbors(target_latent)
    cdf_uniform = np.arange(1, N_PIT_BINS + 1) / N_PIT_BINS
    chosen = np.empty(len(target_nb), dtype=np.int64)
    pdfs = np.empty((len(target_nb), EDGES.size - 1))
    for t, nb in enumerate(target_nb):
        w1 = np.empty(n_k)
        for c, k in enumerate(k_grid):
            h = np.bincount(pit_bin[nb[:k], c], minlength=N_PIT_BINS)
            w1[c] = np.sum(np.abs(np.cumsum(h) / k - cdf_uniform)) / N_PIT_BINS
        # First k on ties; the tolerance absorbs rounding of equal distances.
        chosen[t] = k_grid[np.flatnonzero(w1 <= w1.min() + 1e-12)[0]]
        pdfs[t] = histogram_pdfs(train_z[nb[None, : chosen[t]]], EDGES)[0]
    return chosen, pdfs


def neighbour_check(model: AdaptiveKNN, train_latent, target_latent, neighbours) -> dict:
    """The search against a float64 NumPy brute force, one target at a time."""
    x = train_latent.astype(np.float64)
    identical = 0
    found = 0
    for t, q in enumerate(target_latent.astype(np.float64)):
        d = ((x - q) ** 2).sum(axis=1)
        ref = np.argsort(d, kind="stable")[: model.k_max]
        identical += bool(np.array_equal(ref, neighbours[t]))
        found += np.intersect1d(ref, neighbours[t]).size
    n = len(target_latent)
    return {
        "n_targets": n,
        "identical_lists": identical / max(n, 1),
        "recall_at_k_max": found / max(n * model.k_max, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=400_000)
    parser.add_argument("--n-target", type=int, default=100_000)
    parser.add_argument("--sub-train", type=int, default=20_000)
    parser.add_argument("--sub-target", type=int, default=2_000)
    parser.add_argument("--check", type=int, default=200, help="targets checked vs NumPy")
    parser.add_argument("--quick", action="store_true", help="40k train, 10k targets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.n_target, args.sub_train = 40_000, 10_000, 10_000
    rng = np.random.default_rng(args.seed)
    k_grid = published_k_grid()

    # Warm-up: compile the kernels (cached on disk) so the timings are of the work alone.
    warm_x, warm_z = make_latents(2100, rng)
    AdaptiveKNN(EDGES, k_grid=k_grid).fit(warm_x[:2050], warm_z[:2050]).predict(warm_x[2050:])

    train_x, train_z = make_latents(args.n_train, rng)
    target_x, _ = make_latents(args.n_target, rng)
    start = time.perf_counter()
    cpu_start = time.process_time()
    model = AdaptiveKNN(EDGES, k_grid=k_grid).fit(train_x, train_z)
    fit_seconds = time.perf_counter() - start
    result = model.predict(target_x)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    median_k = float(np.median(result.k))
    check = neighbour_check(model, train_x, target_x[: args.check], result.neighbours)
    del result, model

    sub_train_x, sub_train_z = make_latents(args.sub_train, rng)
    sub_target_x, _ = make_latents(args.sub_target, rng)
    start = time.perf_counter()
    sub_model = AdaptiveKNN(EDGES, k_grid=k_grid).fit(sub_train_x, sub_train_z)
    sub = sub_model.predict(sub_target_x)
    fast_sub_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ref_k, ref_p = straightforward(sub_model, sub_train_x, sub_train_z, sub_target_x)
    slow_sub_seconds = time.perf_counter() - start
    # The neighbour search alone, which both paths run: what the ratio has in common.
    start = time.perf_counter()
    sub_model._other_neighbours(sub_train_x, np.arange(args.sub_train))
    sub_model.kneighbors(sub_target_x)
    search_sub_seconds = time.perf_counter() - start

    emit(
        {
            "benchmark": "knn_speed",
            "n_train": args.n_train,
            "n_target": args.n_target,
            "latent_dim": int(train_x.shape[1]),
            "k_grid": {"n": int(k_grid.size), "min": int(k_grid[0]), "max": int(k_grid[-1])},
            "output_bins": int(EDGES.size - 1),
            "seconds": seconds,
            "fit_seconds": fit_seconds,
            "predict_seconds": seconds - fit_seconds,
            "cpu_seconds": cpu_seconds,
            "peak_memory_gb": peak_gb,
            "median_chosen_k": median_k,
            "neighbour_check": check,
            "subsample": {"n_train": args.sub_train, "n_target": args.sub_target},
            "fast_seconds_on_subsample": fast_sub_seconds,
            "straightforward_seconds_on_subsample": slow_sub_seconds,
            "speedup_vs_straightforward": slow_sub_seconds / fast_sub_seconds,
            "common_search_seconds_on_subsample": search_sub_seconds,
            "identical_on_subsample": bool(
                np.array_equal(sub.k, ref_k) and np.array_equal(sub.p, ref_p)
            ),
            "threads": numba.get_num_threads(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "clapkit": clapkit.__version__,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
