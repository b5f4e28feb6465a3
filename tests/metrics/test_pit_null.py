"""The finite-sample KS and W1 of perfectly calibrated PIT values quoted in docs/metrics.md.

The table there comes from ``benchmarks/pit_null.py --draws 2000 --seed 0``; here a
smaller simulation with another seed must agree with it within its own sampling noise,
so a wrong number in the document (or a change in what ``pit_ks`` / ``pit_w1`` compute)
fails.
"""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from clapkit.metrics import pit_uniformity, wasserstein_to_uniform

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
COLUMNS = ("ks_mean", "ks_median", "ks_p95", "w1_mean", "w1_median", "w1_p95")


def documented_table() -> dict[int, dict[str, float]]:
    """The rows of the table that follows the ``pit-null`` marker, by N."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- pit-null")
    rows = {}
    for line in text[start:].splitlines()[3:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[int(cells[0])] = dict(zip(COLUMNS, map(float, cells[1:]), strict=True))
    return rows


def simulate(n: int, draws: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    ks, w1 = np.empty(draws), np.empty(draws)
    for i in range(draws):
        u = rng.uniform(size=n)
        ks[i] = stats.kstest(u, "uniform").statistic
        w1[i] = wasserstein_to_uniform(u)
    out = {}
    for name, values in (("ks", ks), ("w1", w1)):
        out[f"{name}_mean"] = float(values.mean())
        out[f"{name}_median"], out[f"{name}_p95"] = np.percentile(values, [50, 95])
    return out


def test_the_table_is_found_with_the_three_sizes():
    assert sorted(documented_table()) == [100, 1000, 10000]


@pytest.mark.parametrize(("n", "draws"), [(100, 400), (1000, 400), (10000, 100)])
def test_documented_numbers_match_a_fresh_simulation(n, draws):
    documented = documented_table()[n]
    fresh = simulate(n, draws, seed=12345)
    # √N·KS and √N·W1 have relative spreads of about 30% and 60%: a mean or median over
    # `draws` samples is good to about 0.6/√draws (relative), a 95th percentile to a
    # little worse; three to four of those still catch a wrong digit or a wrong √N.
    for key, value in documented.items():
        tolerance = 0.6 / math.sqrt(draws) * (4 if key.endswith("p95") else 3)
        assert fresh[key] == pytest.approx(value, rel=tolerance), key


def test_the_large_n_limits_quoted_beside_the_table():
    # √N·mean KS → √(π/2)·ln 2 and √N·mean W1 → √(2π)/8, as the document says.
    row = documented_table()[10000]
    assert row["ks_mean"] * 100 == pytest.approx(math.sqrt(math.pi / 2) * math.log(2), rel=0.02)
    assert row["w1_mean"] * 100 == pytest.approx(math.sqrt(2 * math.pi) / 8, rel=0.02)


def test_pit_uniformity_reports_the_statistics_simulated_here():
    # The table is about summarize's pit_ks and pit_w1: the same two numbers.
    u = np.random.default_rng(0).uniform(size=500)
    result = pit_uniformity(u)
    assert result["ks"] == stats.kstest(u, "uniform").statistic
    assert result["w1"] == wasserstein_to_uniform(u)
