"""Speed and memory of the PDF metrics against one plain memory pass over the same array.

Times ``pit``, ``crps`` and ``coverage`` (validation included, as users call them) on
1,000,000 PDFs × 180 bins in float32, and ``p.sum()`` in the same run as the yardstick.
Prints JSON: galaxies per second, the median-time ratio of each metric to the memory
pass, and the peak memory each metric allocates relative to the input array (traced
with ``tracemalloc``, which sees NumPy's allocations).

Goals (issue 2): every ratio ≤ 5 and every peak ≤ 3× the input size.

Usage: ``python benchmarks/metrics.py [--n 1000000] [--bins 180] [--repeats 5] [--threads T]
[--out FILE]``. The metrics run rows in parallel threads (numba); the memory pass is
NumPy's single-threaded ``sum``, so ``--threads 1`` shows the one-core ratio.
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc

import numba
import numpy as np
from _report import emit

import clapkit
from clapkit.metrics import coverage, crps, pit


def make_pdfs(n: int, n_bins: int, seed: int = 0, chunk: int = 100_000):
    """Random smooth float32 PDFs on [0, 0.4] and truths drawn near their peaks."""
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.0, 0.4, n_bins + 1)
    centers = 0.5 * (edges[1:] + edges[:-1]).astype(np.float32)
    p = np.empty((n, n_bins), dtype=np.float32)
    mu = rng.uniform(0.05, 0.35, n).astype(np.float32)
    sigma = rng.uniform(0.005, 0.03, n).astype(np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = np.exp(-0.5 * ((centers - mu[start:stop, None]) / sigma[start:stop, None]) ** 2)
        p[start:stop] = block / block.sum(axis=1, keepdims=True)
    z_true = rng.normal(mu, sigma).clip(0.0, 0.4)
    return p, edges, z_true


def measure(func, repeats: int):
    """Median wall time over ``repeats`` calls and the peak traced allocation of one call."""
    func()  # compile and warm caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    func()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return float(np.median(times)), peak


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--bins", type=int, default=180)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="numba threads (default: all cores)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        numba.set_num_threads(args.threads)

    p, edges, z_true = make_pdfs(args.n, args.bins)
    input_bytes = p.nbytes
    cases = {
        "memory_pass": lambda: p.sum(),
        "pit": lambda: pit(p, edges, z_true),
        "crps": lambda: crps(p, edges, z_true),
        "coverage": lambda: coverage(p, edges, z_true, [0.68, 0.95]),
        "coverage_hpd": lambda: coverage(p, edges, z_true, [0.68, 0.95], kind="hpd"),
    }
    results = {name: measure(func, args.repeats) for name, func in cases.items()}
    base_seconds = results["memory_pass"][0]
    report = {
        "clapkit_version": clapkit.__version__,
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()}".strip(),
        "n_galaxies": args.n,
        "n_bins": args.bins,
        "dtype": "float32",
        "input_gb": input_bytes / 1e9,
        "repeats": args.repeats,
        "numba_threads": numba.get_num_threads(),
        "metrics": {
            name: {
                "median_seconds": seconds,
                "galaxies_per_second": args.n / seconds,
                "ratio_to_memory_pass": seconds / base_seconds,
                "peak_memory_over_input": peak / input_bytes,
            }
            for name, (seconds, peak) in results.items()
        },
    }
    checked = [name for name in report["metrics"] if name != "memory_pass"]
    report["goals_met"] = {
        "time_within_5x": all(report["metrics"][k]["ratio_to_memory_pass"] <= 5 for k in checked),
        "memory_within_3x": all(
            report["metrics"][k]["peak_memory_over_input"] <= 3 for k in checked
        ),
    }
    return emit(report, args.out)


if __name__ == "__main__":
    main()
