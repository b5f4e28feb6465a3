"""Scatter plots of large runs draw a fixed subset and say so; small runs draw all."""

import numpy as np
import pandas as pd
import pytest
from clapkit_app.scatter import MAX_SCATTER_POINTS, shown_note, shown_rows
from clapkit_app.stellar_mass_plots import MassScatter
from clapkit_app.translation_plots import MorphologyPlots


def morphology_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n) + 7,
            "flux_r": rng.uniform(1, 10, n),
            "peak_r": rng.uniform(0.1, 1, n),
            "sigma_r": rng.uniform(0.5, 2, n),
            "hsm_ok_r": np.ones(n),
            "photoz": rng.uniform(0, 0.4, n),
        }
    )


@pytest.mark.parametrize("n", [50, MAX_SCATTER_POINTS, MAX_SCATTER_POINTS + 1, 25_000])
def test_shown_rows_are_all_rows_or_a_fixed_sorted_subset(n):
    rows = shown_rows(n)
    assert rows.size == min(n, MAX_SCATTER_POINTS)
    assert np.all(np.diff(rows) > 0) and rows[0] >= 0 and rows[-1] < n
    assert np.array_equal(rows, shown_rows(n))  # the same in every session
    assert (shown_note(n) == "") == (n <= MAX_SCATTER_POINTS)


def test_a_large_morphology_scatter_draws_the_same_subset_for_every_model():
    n = 25_000
    real = morphology_table(n, 0)
    plots = MorphologyPlots()
    plots.update(real, morphology_table(n, 1), "r", "nrgan", row=123)
    first = np.asarray(plots.points.data["id"])
    assert first.size == MAX_SCATTER_POINTS
    assert np.isin(first, real["id"]).all()
    assert plots.figures["flux"].title.text.endswith("(10,000 of 25,000 shown)")
    # The chosen galaxy is starred from the full table, drawn or not in the subset.
    assert list(plots.chosen.data["id"]) == [real["id"].iat[123]]
    plots.update(real, morphology_table(n, 2), "r", "swin", row=None)
    assert np.array_equal(plots.points.data["id"], first)


def test_a_small_mass_scatter_draws_every_galaxy_and_a_large_one_a_subset():
    scatter = MassScatter()
    for n, expected, note in ((300, 300, ""), (40_000, MAX_SCATTER_POINTS, " (10,000 of")):
        ids = np.arange(n)
        true = np.linspace(9, 12, n)
        scatter.update(ids, true, true + 0.1, chosen=n - 1, title="images")
        assert len(scatter.points.data["id"]) == expected
        assert scatter.figure.title.text.startswith("images" + note)
        assert list(scatter.chosen.data["id"]) == [n - 1]
        shown = np.asarray(scatter.points.data["id"])
        assert np.allclose(scatter.points.data["point"], true[shown] + 0.1)
