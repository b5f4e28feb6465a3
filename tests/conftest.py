"""Small synthetic galaxy sets whose redshift is readable from images and magnitudes.

The mock survey is too slow to simulate for every pipeline test; these sets keep what
the pipeline relies on (a catalog with id, z, split, E(B-V), ``mag_*``/``magerr_*``, and
an image stack) and make the redshift recoverable: the g-r colour and the ratio of the
g and r images grow with z, so a working pipeline must do better than the prior.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from clapkit.data import GalaxySet, ImageStack, assign_splits
from clapkit.sim.disk_cache import CACHE_ENV


def pytest_configure(config: pytest.Config) -> None:
    """Give the whole run one fresh cache folder for the simulator's start-up work
    (:mod:`clapkit.sim.disk_cache`), so that the tests neither read nor write the user's.

    Set in the controlling process before pytest-xdist starts its workers, so the
    workers, the notebook kernels and the Dask and simulator worker processes started by
    the tests all inherit it and share one folder: the first process builds the kcorrect
    models and the population prior, the others read them.
    """
    if hasattr(config, "workerinput") or os.environ.get(CACHE_ENV):
        return  # a pytest-xdist worker, or a folder chosen by the caller
    folder = tempfile.mkdtemp(prefix="clapkit-test-cache-")
    os.environ[CACHE_ENV] = folder
    config.add_cleanup(
        lambda: (shutil.rmtree(folder, ignore_errors=True), os.environ.pop(CACHE_ENV, None))
    )


def synthetic_galaxies(
    n: int = 300, seed: int = 0, images: bool = True, size: int = 16, bands: str = "gri"
) -> GalaxySet:
    """``n`` galaxies with z on [0.02, 0.38], colours and images that encode it."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.02, 0.38, n)
    mag_r = rng.uniform(15.0, 17.5, n)
    colour = {"g": 0.5 + 4.0 * z, "r": np.zeros(n), "i": -0.3 - 1.5 * z, "z": -0.5 - 2.0 * z}
    catalog = Table({"id": np.arange(1000, 1000 + n), "z": z, "ebv": rng.uniform(0, 0.1, n)})
    for band in bands:
        catalog[f"mag_{band}"] = mag_r + colour[band] + rng.normal(0, 0.02, n)
        catalog[f"magerr_{band}"] = rng.uniform(0.01, 0.03, n)
    catalog["split"] = assign_splits(catalog["id"], {"train": 0.6, "valid": 0.2, "test": 0.2}, seed)
    stacks = {}
    if images:
        yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
        blob = np.exp(-(xx**2 + yy**2) / (2 * 2.0**2))
        flux = 10 ** (-0.4 * (np.column_stack([catalog[f"mag_{b}"] for b in bands]) - 22.5))
        pixels = flux[:, :, None, None] * blob / blob.sum()
        pixels = pixels + rng.normal(0, 0.02, pixels.shape)
        stacks["sdss"] = ImageStack(
            pixels.astype(np.float32), tuple(bands), 0.396, (22.5,) * len(bands), "nanomaggy"
        )
    return GalaxySet(catalog, stacks)


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    """A saved synthetic set with a 3-band 16x16 image stack."""
    path = tmp_path / "galaxies.h5"
    synthetic_galaxies().save(path)
    return path


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    """A saved synthetic catalog without images (the MLP path)."""
    path = tmp_path / "catalog.h5"
    synthetic_galaxies(n=400, images=False, bands="griz").save(path)
    return path


@pytest.fixture(scope="session")
def make_galaxies():
    """:func:`synthetic_galaxies`, for tests to call with their own sizes."""
    return synthetic_galaxies


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    """The photo-z ``tiny`` preset in full, small enough that the whole pipeline trains in
    seconds; tests change parts of it (in copies)."""
    # Imported here, not at the top: the pipeline imports PyTorch, which most tests skip.
    from clapkit.photoz.pipeline import resolve_config

    return resolve_config({"preset": "tiny"})


# ``make test`` runs the suite on two pytest-xdist workers with ``--dist loadscope``: a
# module's tests (a class's, where a module has classes) run in one worker, so a module
# fixture is built once; each notebook is a class of its own (tests/test_notebooks.py).
# (``--dist loadgroup`` with xdist_group marks would be the tool, but pytest-xdist 3.8
# renames items in a way pytest 9 no longer reads, so its groups are silently ignored.)
# With ``--no-loadscope-reorder`` the modules are handed out in the order sorted here,
# the slowest first (the longest notebooks first among them), so that no worker is left
# with a long tail.
_SLOW_FIRST = ("tests/test_notebooks.py", "tests/ui/", "tests/test_cli.py", "tests/sim/")


def _slow_first(item: pytest.Item) -> tuple[int, int]:
    path = item.nodeid.split("::")[0]
    rank = next(
        (i for i, prefix in enumerate(_SLOW_FIRST) if path.startswith(prefix)),
        len(_SLOW_FIRST),
    )
    # Notebooks grow with their number (06 and 03 are the longest): the last ones first.
    number = item.nodeid.split("::TestNotebook_")[-1][:2]
    return rank, -int(number) if number.isdigit() else 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_slow_first)  # stable: the order within each rank is kept
