"""What the PIT of a perfectly calibrated sample scores: KS and W1 for N uniform values.

A perfectly calibrated estimator's PIT values are N independent draws from U(0, 1), yet
their KS statistic and 1-Wasserstein distance to uniform are not zero: they shrink as
1/√N. This script draws ``--draws`` such samples for each N and reports the mean, the
median and the 95th percentile of both statistics, computed by the functions the
metrics use (:func:`clapkit.metrics.pit_uniformity`'s ``ks`` is scipy's ``kstest``
statistic, ``w1`` is :func:`clapkit.metrics.wasserstein_to_uniform`), with each scaled
by √N beside the large-N limits:

- KS: √N·D_N tends to the Kolmogorov distribution, of mean √(π/2)·ln 2 ≈ 0.8687 and
  95th percentile ≈ 1.358;
- W1: √N·W1 tends to ∫₀¹ |B(t)| dt for a Brownian bridge B, of mean
  √(2/π)·∫₀¹ √(t(1 − t)) dt = √(2π)/8 ≈ 0.3133.

``docs/metrics.md`` quotes this script's output (``--draws 2000 --seed 0``) and
``tests/metrics/test_pit_null.py`` checks the quoted numbers with fewer draws.

Usage: ``python benchmarks/pit_null.py [--sizes 100,1000,10000] [--draws 2000]
[--seed 0] [--out FILE]``. Seconds on one core.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from _report import emit
from scipy import stats

from clapkit.metrics import wasserstein_to_uniform

#: Large-N limits of the mean of √N·KS and √N·W1, and of the 95th percentile of √N·KS.
KS_MEAN_LIMIT = math.sqrt(math.pi / 2) * math.log(2)
KS_95_LIMIT = 1.3581
W1_MEAN_LIMIT = math.sqrt(2 * math.pi) / 8


def null_statistics(n: int, draws: int, seed: int = 0) -> dict[str, np.ndarray]:
    """KS statistic and W1 of ``draws`` samples of ``n`` uniform PIT values."""
    rng = np.random.default_rng(seed)
    ks = np.empty(draws)
    w1 = np.empty(draws)
    for i in range(draws):
        u = rng.uniform(size=n)
        ks[i] = stats.kstest(u, "uniform").statistic
        w1[i] = wasserstein_to_uniform(u)
    return {"ks": ks, "w1": w1}


def summarise(values: np.ndarray, n: int) -> dict[str, float]:
    """Mean, median and 95th percentile, as they are and times √N."""
    mean, median, p95 = float(values.mean()), *np.percentile(values, [50, 95]).tolist()
    root = math.sqrt(n)
    return {
        "mean": mean,
        "median": median,
        "p95": p95,
        "mean_sqrt_n": mean * root,
        "p95_sqrt_n": p95 * root,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    report: dict = {
        "draws": args.draws,
        "seed": args.seed,
        "limits": {
            "ks_mean_sqrt_n": KS_MEAN_LIMIT,
            "ks_p95_sqrt_n": KS_95_LIMIT,
            "w1_mean_sqrt_n": W1_MEAN_LIMIT,
        },
        "sizes": {},
    }
    for n in (int(size) for size in args.sizes.split(",")):
        values = null_statistics(n, args.draws, args.seed)
        report["sizes"][str(n)] = {name: summarise(v, n) for name, v in values.items()}
    report["seconds"] = time.perf_counter() - start
    return emit(report, args.out)


if __name__ == "__main__":
    main()
