"""Small GalaxySets built in memory for the tests of clapkit.data."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Column, Table

from clapkit.data import GalaxySet, ImageStack


def _make_catalog(n: int = 12, seed: int = 0) -> Table:
    """A catalog with int ids, redshifts, a str column, units, a description and meta."""
    rng = np.random.default_rng(seed)
    catalog = Table()
    catalog["id"] = Column(np.arange(100, 100 + n, dtype=np.int64), description="galaxy id")
    catalog["z"] = Column(rng.uniform(0.01, 0.4, n), description="spectroscopic redshift")
    catalog["ra"] = Column(rng.uniform(0, 360, n), unit=u.deg)
    catalog["name"] = Column([f"gal-{i}é" for i in range(n)], description="a str column")
    catalog["flag"] = rng.integers(0, 2, n).astype(bool)
    catalog["fluxes"] = Column(rng.normal(size=(n, 3)).astype(np.float32), unit=u.nanomaggy)
    catalog.meta["survey"] = "mock"
    catalog.meta["nested"] = {"a": [1, 2, 3]}
    return catalog


def _make_stack(n: int = 12, bands=("g", "r", "i"), size: int = 8, seed: int = 1) -> ImageStack:
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, len(bands), size, size)).astype(np.float32)
    zero_points = tuple(22.5 + 0.1 * k for k in range(len(bands)))
    return ImageStack(images, tuple(bands), 0.396, zero_points, "nanomaggy")


@pytest.fixture
def small_set() -> GalaxySet:
    """12 galaxies, two instruments with different bands and sizes."""
    n = 12
    stacks = {
        "sdss": _make_stack(n, ("u", "g", "r", "i", "z"), 8, seed=1),
        "cfht": _make_stack(n, ("g", "r"), 12, seed=2),
    }
    stacks["cfht"].pixel_scale = 0.187
    stacks["cfht"].units = "counts"
    return GalaxySet(_make_catalog(n), stacks, meta={"config": {"seed": 3}, "note": "test"})


@pytest.fixture
def make_catalog():
    """Factory: ``make_catalog(n, seed)`` -> a fresh catalog."""
    return _make_catalog


@pytest.fixture
def make_stack():
    """Factory: ``make_stack(n, bands, size, seed)`` -> a fresh float32 ImageStack."""
    return _make_stack
