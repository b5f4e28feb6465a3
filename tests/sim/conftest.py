"""Shared simulations and helpers for the tests of the mock survey.

Simulating is expensive in two ways: every process first fits kcorrect to the real SDSS
galaxies and builds the kcorrect models (seconds, cached per process), and every chunk
renders :data:`~clapkit.sim.survey.CHUNK_SIZE` (256) galaxies however few are asked for:
the price of "a smaller survey is a prefix of a larger one". So the realistic survey is
simulated once per session and shared (``mock_survey``), and tests of the chunk
machinery shrink the chunks instead (``small_chunks``): what they check (determinism,
prefixes, workers, regenerating a chunk) holds for any chunk size, and small chunks let
a survey of 20 galaxies span three of them.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from clapkit.data import GalaxySet
from clapkit.sim import simulate, survey
from clapkit.sim.dust import effective_wavelengths, extinction_coefficients
from clapkit.sim.population import _template_masses, population_prior
from clapkit.sim.seds import BAND_SETS, kcorrect_model, old_templates

#: Galaxies per chunk in the tests that need several chunks.
SMALL_CHUNK = 8


@pytest.fixture(scope="session")
def kcorrect_ready() -> None:
    """Build every per-process cache of the simulator once, with kcorrect's leaks ignored.

    kcorrect 5.1 leaves the files it reads (templates, filter responses, the Vega
    spectrum) open; when they are garbage-collected Python warns (ResourceWarning), and
    pytest, which turns warnings into errors here, reports them in whichever test happens
    to run the collector. Reading everything once up front, with that warning ignored
    and the garbage collected, keeps the tests about clapkit. Every module of these tests
    uses this fixture (``pytestmark``), and so do the fixtures below.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        population_prior()
        for band_set in BAND_SETS:
            kcorrect_model(band_set)
            extinction_coefficients(band_set)
            effective_wavelengths(band_set)
        old_templates()
        _template_masses()
        gc.collect()


@pytest.fixture(scope="session")
def mock_survey(kcorrect_ready) -> GalaxySet:
    """40 galaxies, both instruments, the real chunk size (its meta holds n and seed)."""
    return simulate(40, seed=2024)


@pytest.fixture(scope="session")
def chunked_survey(kcorrect_ready) -> GalaxySet:
    """20 galaxies in chunks of 8 (three chunks, the last one truncated), seed 77."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(survey, "CHUNK_SIZE", SMALL_CHUNK)
        return simulate(20, seed=77)


@pytest.fixture
def small_chunks(monkeypatch) -> int:
    """Make the simulator use chunks of 8 galaxies during one test (forked workers too)."""
    monkeypatch.setattr(survey, "CHUNK_SIZE", SMALL_CHUNK)
    return SMALL_CHUNK


def _assert_same_galaxies(a: GalaxySet, b: GalaxySet) -> None:
    assert a.catalog.colnames == b.catalog.colnames
    for name in a.catalog.colnames:
        assert a.catalog[name].unit == b.catalog[name].unit, name
        np.testing.assert_array_equal(
            np.asarray(a.catalog[name]), np.asarray(b.catalog[name]), err_msg=name
        )
    assert a.instruments == b.instruments
    for name, stack in a.stacks.items():
        other = b.stacks[name]
        assert (stack.bands, stack.pixel_scale, stack.zero_points, stack.units) == (
            other.bands,
            other.pixel_scale,
            other.zero_points,
            other.units,
        )
        np.testing.assert_array_equal(
            np.asarray(stack.images), np.asarray(other.images), err_msg=name
        )


@pytest.fixture(scope="session")
def assert_same_galaxies() -> Callable[[GalaxySet, GalaxySet], None]:
    """``assert_same_galaxies(a, b)``: bit-identical catalogs (with units) and stacks."""
    return _assert_same_galaxies
