"""The simulator's start-up work kept on disk: read back unchanged, rebuilt when damaged
or stale, never fatal, and equal to a fresh build."""

import pickle

import kcorrect.response
import numpy as np
import pytest

from clapkit.sim import disk_cache, dust, population, seds
from clapkit.sim.disk_cache import CACHE_ENV, cache_dir, disk_cached


@pytest.fixture
def counted(tmp_path, monkeypatch):
    """A cached function that records its calls, with the cache in ``tmp_path``."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    calls = []

    @disk_cached
    def table(name):
        calls.append(name)
        return {"name": name, "values": np.arange(5.0) * len(calls)}

    return table, calls, tmp_path


def test_a_stored_result_is_read_back_without_calling_again(counted):
    table, calls, folder = counted
    first = table("sdss")
    again = table("sdss")
    assert calls == ["sdss"]
    np.testing.assert_array_equal(again["values"], first["values"])
    assert [p.name.split(".")[0] for p in folder.glob("*.pickle")] == ["table-sdss"]
    # Another argument is another entry.
    table("wise")
    assert calls == ["sdss", "wise"]


def test_a_damaged_entry_is_rebuilt_and_replaced(counted):
    table, calls, folder = counted
    table("sdss")
    (entry,) = folder.glob("table-sdss.*.pickle")
    entry.write_bytes(b"not a pickle")
    assert table("sdss")["name"] == "sdss"
    assert calls == ["sdss", "sdss"]
    assert pickle.loads(entry.read_bytes())["name"] == "sdss"


def test_a_new_key_replaces_the_older_entry(counted, monkeypatch):
    table, calls, folder = counted
    table("sdss")
    (old,) = folder.glob("table-sdss.*.pickle")
    # The simulator's code or a library version changed: the key changes with it.
    monkeypatch.setattr(disk_cache, "_environment_key", lambda: "another environment")
    table("sdss")
    assert calls == ["sdss", "sdss"]
    (new,) = folder.glob("table-sdss.*.pickle")
    assert new != old and not old.exists()


def test_off_builds_every_time_and_writes_nothing(counted, monkeypatch):
    table, calls, folder = counted
    monkeypatch.setenv(CACHE_ENV, "off")
    assert cache_dir() is None
    table("sdss")
    table("sdss")
    assert calls == ["sdss", "sdss"]
    assert not list(folder.iterdir())


def test_a_folder_that_cannot_be_written_leaves_the_result_intact(tmp_path, monkeypatch):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the folder should be")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "sim"))

    @disk_cached
    def value(name):
        return name.upper()

    assert value("sdss") == "SDSS"
    assert blocker.read_text() == "a file where the folder should be"


def test_cached_models_equal_fresh_ones_and_work_in_a_fresh_registry():
    """What the session's cache (tests/conftest.py) holds equals a new build, and a model
    read from it brings the filter responses its methods look up."""
    fresh_model, fresh_responses = seds._kcorrect_model_and_responses.__wrapped__("sdss")
    cached_model, cached_responses = seds._kcorrect_model_and_responses("sdss")
    np.testing.assert_array_equal(cached_model.Amatrix(0.1), fresh_model.Amatrix(0.1))
    assert cached_responses.keys() == fresh_responses.keys()
    np.testing.assert_array_equal(
        dust.extinction_coefficients.__wrapped__.__wrapped__("sdss"),
        dust.extinction_coefficients("sdss"),
    )
    assert list(cache_dir().glob("kcorrect_model_and_responses-sdss.*.pickle"))

    registry = kcorrect.response.ResponseDict()
    saved = {name: registry.pop(name) for name in list(cached_responses) if name in registry}
    try:
        model = seds.kcorrect_model.__wrapped__("sdss")  # past the in-process lru_cache
        derived = model.derived(
            redshift=np.array([0.05], dtype=np.float32),
            coeffs=np.ones((1, model.templates.nsed), dtype=np.float32),
        )
    finally:
        registry.update(saved)
    assert np.isfinite(derived["mremain"]).all() and derived["mremain"][0] > 0

    fresh_prior = population.population_prior.__wrapped__.__wrapped__()
    cached_prior = population.population_prior()
    for name, value in vars(fresh_prior).items():
        np.testing.assert_array_equal(np.asarray(vars(cached_prior)[name]), np.asarray(value))
