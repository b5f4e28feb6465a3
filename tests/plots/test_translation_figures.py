"""The translation figures show the run's stamps and stored noise spectra."""

import numpy as np
import pytest

from clapkit.data import GalaxySet
from clapkit.errors import ValidationError
from clapkit.plots import plan_figures, plot_noise_spectra, plot_translation_grid
from clapkit.plots.from_run import GRID_GALAXIES
from clapkit.testing import synthetic_translation_run
from clapkit.translate.results import read_evaluation


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    # One model keeps the run quick; the grid and spectra take any number.
    return synthetic_translation_run(
        tmp_path_factory.mktemp("translation") / "run", models=("swin",)
    )


@pytest.fixture(scope="module")
def figures(run_root):
    plan = plan_figures(run_root)
    return {figure.name: figure.make("double") for figure in plan.figures}


def test_a_translation_run_makes_a_grid_and_spectra_per_task(run_root, figures):
    assert sorted(figures) == ["noise_spectra_s2c", "translation_s2c"]
    assert any("photo-z figures" in s for s in plan_figures(run_root).skipped)


def test_the_grid_shows_source_real_and_each_translation_of_the_first_test_galaxies(
    run_root, figures
):
    fig, table = figures["translation_s2c"]
    columns = ["source", "real", "swin"]
    assert len(fig.axes) == GRID_GALAXIES * len(columns)
    assert [ax.get_title() for ax in fig.axes[: len(columns)]] == columns
    with GalaxySet.load(run_root / "survey.h5") as data:
        test = data.split("test")
        ids = np.asarray(test.ids)[:GRID_GALAXIES]
        r = list(test.stacks["cfhtls"].bands).index("r")
        real = np.asarray(test.stacks["cfhtls"].images[:GRID_GALAXIES])[:, r]
    with GalaxySet.load(run_root / "translate" / "s2c" / "swin" / "translated.h5") as out:
        translated = np.asarray(out.stacks["cfhtls"].images[:GRID_GALAXIES])[:, r]
    assert [ax.get_ylabel() for ax in fig.axes[:: len(columns)]] == [str(i) for i in ids]
    for name, images in (("real", real), ("swin", translated)):
        rows = table[table["image_set"] == name]
        assert list(rows["galaxy_id"]) == ids.tolist()
        assert np.allclose(rows["flux"], images.sum(axis=(1, 2)), rtol=1e-5)
        shown = [ax.get_images()[0].get_array() for ax in fig.axes[columns.index(name) :: 3]]
        assert all(np.allclose(s, im) for s, im in zip(shown, images, strict=True))
    # The translation is stretched as the real image is, so they compare by eye.
    real_rows, swin_rows = table[table["image_set"] == "real"], table[table["image_set"] == "swin"]
    assert np.array_equal(real_rows["vmax"], swin_rows["vmax"])


def test_the_noise_spectra_are_the_stored_ones(run_root, figures):
    fig, table = figures["noise_spectra_s2c"]
    evaluation = read_evaluation(run_root, "s2c")
    spectra, bands = evaluation["noise_power"], evaluation["bands"]
    assert [ax.get_title() for ax in fig.axes] == [f"{b} band" for b in bands]
    assert all(ax.get_xscale() == "log" and ax.get_yscale() == "log" for ax in fig.axes)
    for name in ("real", "swin"):
        for band in bands:
            rows = table[(table["image_set"] == name) & (table["band"] == band)]
            assert np.allclose(rows["k"], spectra["k"])
            assert np.allclose(rows["power"], spectra[name][band])
    first = fig.axes[0].get_lines()[0]
    assert first.get_label() == "real" and np.allclose(first.get_ydata(), spectra["real"][bands[0]])


def test_mismatched_arrays_are_refused():
    with pytest.raises(ValidationError, match="expected \\(2, H, W\\)"):
        plot_translation_grid({"real": np.zeros((3, 4, 4))}, [1, 2], "r")
    with pytest.raises(ValidationError, match="2 values for 3 frequencies"):
        plot_noise_spectra([0.1, 0.2, 0.3], {"real": {"r": [1.0, 2.0]}})
