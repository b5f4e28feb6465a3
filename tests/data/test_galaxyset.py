"""GalaxySet indexing, batches and splits (in memory; the HDF5 side is in test_hdf5_format)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from clapkit.data import GalaxySet
from clapkit.errors import OverwriteError, ValidationError


def _rows_of(gs: GalaxySet, parent: GalaxySet) -> np.ndarray:
    """Row numbers in ``parent`` of the galaxies of ``gs``, found by id."""
    position = {i: k for k, i in enumerate(parent.ids.tolist())}
    return np.array([position[i] for i in gs.ids.tolist()], dtype=int)


def _assert_subset(sub: GalaxySet, parent: GalaxySet, rows) -> None:
    rows = np.asarray(rows, dtype=int)
    np.testing.assert_array_equal(sub.ids, parent.ids[rows])
    np.testing.assert_array_equal(sub.catalog["z"], parent.catalog["z"][rows])
    for name, stack in parent.stacks.items():
        np.testing.assert_array_equal(sub.stacks[name].images, np.asarray(stack.images)[rows])
        assert sub.stacks[name].bands == stack.bands


def test_basic_properties(small_set):
    assert len(small_set) == 12
    assert small_set.instruments == ["sdss", "cfht"]
    assert small_set.ids.tolist() == list(range(100, 112))
    assert small_set.meta == {"config": {"seed": 3}, "note": "test"}
    assert not small_set.is_lazy
    assert "12 galaxies" in repr(small_set)


@pytest.mark.parametrize(
    ("index", "rows"),
    [
        (3, [3]),
        (-1, [11]),
        (slice(2, 5), [2, 3, 4]),
        (slice(None, None, 4), [0, 4, 8]),
        (slice(None, None, -5), [11, 6, 1]),
        ([7, 2, 9], [7, 2, 9]),
        (np.array([11, 0, -2]), [11, 0, 10]),
        (np.arange(12) % 5 == 0, [0, 5, 10]),
        ([], []),
    ],
)
def test_indexing_returns_rows_in_order(small_set, index, rows):
    sub = small_set[index]
    assert len(sub) == len(rows)
    _assert_subset(sub, small_set, rows)


def test_subset_is_independent_of_parent(small_set):
    sub = small_set[2:5]
    sub.catalog["z"][0] = 0.99
    sub.stacks["sdss"].images[0] = 7.0
    assert small_set.catalog["z"][2] != 0.99
    assert not (small_set.stacks["sdss"].images[2] == 7.0).all()


def test_duplicate_indices_are_refused(small_set):
    with pytest.raises(ValidationError, match="repeats row 4"):
        small_set[[1, 4, 4]]
    with pytest.raises(ValidationError, match="repeats row 11"):
        small_set[[11, -1]]


@pytest.mark.parametrize("index", [12, -13, [0, 12], np.array([-20])])
def test_out_of_range(small_set, index):
    with pytest.raises(IndexError, match="out of range for a GalaxySet of 12"):
        small_set[index]


def test_wrong_length_boolean_mask(small_set):
    with pytest.raises(ValidationError, match="boolean index has length 3; the set has 12"):
        small_set[np.array([True, False, True])]


@pytest.mark.parametrize("index", ["a", 1.5, [0.5, 1.0]])
def test_bad_index_types(small_set, index):
    with pytest.raises(TypeError):
        small_set[index]


@pytest.mark.parametrize("size", [1, 5, 12, 100])
def test_batches_cover_every_galaxy_once_in_order(small_set, size):
    batches = list(small_set.batches(size))
    assert all(0 < len(b) <= size for b in batches)
    ids = np.concatenate([b.ids for b in batches])
    np.testing.assert_array_equal(ids, small_set.ids)
    images = np.concatenate([b.stacks["cfht"].images for b in batches])
    np.testing.assert_array_equal(images, small_set.stacks["cfht"].images)


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_batch_size_must_be_positive_int(small_set, size):
    with pytest.raises(ValidationError, match="batch size"):
        small_set.batches(size)


def test_batches_of_one_split(small_set):
    gs = small_set.with_splits({"train": 0.5, "test": 0.5}, seed=4)
    batches = list(gs.batches(4, split="test"))
    ids = np.concatenate([b.ids for b in batches])
    expected = gs.ids[np.asarray(gs.catalog["split"]) == "test"]
    np.testing.assert_array_equal(ids, expected)
    assert all(set(b.catalog["split"]) == {"test"} for b in batches)


def test_split_errors(small_set):
    with pytest.raises(ValidationError, match="no 'split' column"):
        small_set.split("train")
    gs = small_set.with_splits()
    with pytest.raises(
        ValidationError, match=r"no split named 'training'; available.*'test', 'train', 'valid'"
    ):
        gs.split("training")
    with pytest.raises(ValidationError, match="no split named"):
        gs.batches(3, split="nope")


def test_with_splits_records_and_refuses_overwrite(small_set):
    gs = small_set.with_splits({"train": 0.5, "valid": 0.25, "test": 0.25}, seed=7)
    assert "split" not in small_set.catalog.colnames  # the original is untouched
    assert [len(gs.split(name)) for name in ("train", "valid", "test")] == [6, 3, 3]
    record = {"seed": 7, "fractions": {"train": 0.5, "valid": 0.25, "test": 0.25}}
    assert gs.meta["split"] == record
    assert gs.catalog.meta["split"] == record
    assert gs.stacks["sdss"].images is small_set.stacks["sdss"].images  # shared, not copied
    with pytest.raises(OverwriteError, match="already has a 'split' column"):
        gs.with_splits(seed=8)
    again = gs.with_splits({"a": 0.5, "b": 0.5}, seed=8, overwrite=True)
    assert set(again.catalog["split"]) == {"a", "b"}
    assert again.meta["split"]["seed"] == 8


def test_split_subset_contents(small_set):
    gs = small_set.with_splits(seed=0)
    train = gs.split("train")
    rows = _rows_of(train, gs)
    assert (np.diff(rows) > 0).all()  # catalog order
    _assert_subset(train, gs, rows)


def test_validate_catches_later_changes(small_set):
    small_set.validate()
    small_set.catalog["id"][3] = small_set.catalog["id"][0]
    with pytest.raises(ValidationError, match="id 100 at rows 0, 3"):
        small_set.validate()


def test_validate_catches_nan_written_into_images(small_set):
    small_set.stacks["cfht"].images[6, 1, 0, 0] = np.nan
    with pytest.raises(
        ValidationError, match=r"instrument 'cfht'.*galaxy index 6 \(id 106\), band 'r'"
    ):
        small_set.validate()


def test_string_ids_and_no_stacks():
    gs = GalaxySet(Table({"id": ["x", "y", "z"], "z": [0.0, 1.0, 2.0]}))
    assert gs.instruments == [] and gs[[2, 0]].ids.tolist() == ["z", "x"]
