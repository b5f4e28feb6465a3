"""False-positive rates of the local-test nulls on samples where the null holds.

Each repeat draws a sample in which the queried variable X is independent of the target
Y given the latent space S (and, in the conditioned case, given c):

- ``noise``: S = (a, 0.3 ε), Y = a + b, X pure noise;
- ``conditioned``: Y = a + b + c, X = c + noise, c outside S and regressed out
  quadratically in each neighbourhood;
- ``latent`` (with ``--cases latent``): Y = a + b, X = a + noise: X and Y share a, which
  S knows, but a still varies across a neighbourhood, the more so the wider it is;
- ``power`` (with ``--cases power``): not a null, X = 0.1 b + noise carries a little of
  the b that S lacks, so the "rate" is each test's power.

For every repeat it records, at α = 0.05:

- ``disjoint``: the default test (disjoint neighbourhoods, here k = 10, a permutation within
  each neighbourhood);
- ``overlapping_published``: overlapping neighbourhoods of k = 100 around every galaxy,
  the per-galaxy correlations against those after one permutation per neighbourhood,
  read as two independent samples (Welch's t-test, :func:`published_null_p`);
- ``overlapping_cells``: the same neighbourhoods with the latent-cell permutation null
  (:mod:`clapkit.interpret.overlapping`), the p-value the overlapping scheme reports;
- ``*_distance``: the same two overlapping nulls with latent-distance weights.

Usage: ``python benchmarks/local_null.py [--repeats 200] [--n 500] [--cases noise,conditioned]
[--out FILE]``; about five minutes on 2 cores with the defaults. Output: JSON ``{case: {scheme: rate}}`` with
the binomial standard error of each rate.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from _report import emit

from clapkit.interpret.local_tests import local_test
from clapkit.interpret.overlapping import published_null_p

ALPHA = 0.05


def sample(case: str, n: int, seed: int) -> dict:
    """Latent, target, external and conditioning of one repeat."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    latent = np.column_stack([a, 0.3 * rng.normal(size=n)])
    if case == "noise":
        return {"latent": latent, "target": a + b, "external": rng.normal(size=n)}
    if case == "power":  # not a null: a weak hidden dependence, to compare power
        return {"latent": latent, "target": a + b, "external": 0.1 * b + rng.normal(size=n)}
    if case == "latent":
        return {"latent": latent, "target": a + b, "external": a + rng.normal(size=n)}
    return {
        "latent": latent,
        "target": a + b + c,
        "external": c + rng.normal(size=n),
        "conditioning": c,
    }


def rates(case: str, repeats: int, n: int, n_permutations: int) -> dict:
    """Rejection rate of each null over ``repeats`` seeded samples."""
    hits = {
        name: 0
        for name in (
            "disjoint",
            "overlapping_published",
            "overlapping_cells",
            "overlapping_published_distance",
            "overlapping_cells_distance",
        )
    }
    for seed in range(repeats):
        data = sample(case, n, seed)
        disjoint = local_test(**data, k=10, n_permutations=n_permutations, seed=seed)
        hits["disjoint"] += disjoint.p_value < ALPHA
        for weights, tail in (("none", ""), ("distance", "_distance")):
            wide = local_test(
                **data,
                neighbourhoods="overlapping",
                weights=weights,
                n_permutations=n_permutations,
                seed=seed,
            )
            naive = published_null_p(wide.centre_r, wide.centre_r_permuted)
            hits["overlapping_published" + tail] += naive < ALPHA
            hits["overlapping_cells" + tail] += wide.p_value < ALPHA
    out = {}
    for name, count in hits.items():
        rate = count / repeats
        out[name] = {"rate": rate, "stderr": math.sqrt(rate * (1 - rate) / repeats)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--n", type=int, default=500, help="galaxies per sample")
    parser.add_argument("--permutations", type=int, default=99)
    parser.add_argument("--cases", default="noise,conditioned", help="comma-separated")
    parser.add_argument("--out")
    args = parser.parse_args()
    report = {
        "alpha": ALPHA,
        "repeats": args.repeats,
        "n": args.n,
        "n_permutations": args.permutations,
    }
    for case in args.cases.split(","):
        report[case] = rates(case, args.repeats, args.n, args.permutations)
    emit(report, args.out)


if __name__ == "__main__":
    main()
