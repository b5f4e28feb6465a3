"""The GalaxySet HDF5 format: round trips, lazy reads, atomic writes and bad files."""

from __future__ import annotations

import os

import astropy.units as u
import h5py
import numpy as np
import pytest

import clapkit
from clapkit.data import GalaxySet, hdf5
from clapkit.data.stack import read_rows
from clapkit.errors import ClapkitError, FileFormatError, OverwriteError, ValidationError


def _assert_same(a: GalaxySet, b: GalaxySet) -> None:
    assert a.catalog.colnames == b.catalog.colnames
    for name in a.catalog.colnames:
        ca, cb = a.catalog[name], b.catalog[name]
        assert ca.dtype == cb.dtype, name
        assert ca.unit == cb.unit, name
        assert ca.description == cb.description, name
        np.testing.assert_array_equal(np.asarray(ca), np.asarray(cb))
    assert a.instruments == b.instruments
    for name in a.instruments:
        sa, sb = a.stacks[name], b.stacks[name]
        assert (sa.bands, sa.pixel_scale, sa.zero_points, sa.units, sa.n_masked) == (
            sb.bands,
            sb.pixel_scale,
            sb.zero_points,
            sb.units,
            sb.n_masked,
        )
        ia, ib = np.asarray(sa.images[()]), np.asarray(sb.images[()])
        assert ia.dtype == ib.dtype == np.float32
        assert ia.tobytes() == ib.tobytes()  # bit-identical


@pytest.mark.parametrize("lazy", [True, False])
def test_round_trip(small_set, tmp_path, lazy):
    path = small_set.save(tmp_path / "set.h5")
    with GalaxySet.load(path, lazy=lazy) as loaded:
        _assert_same(small_set, loaded)
        assert loaded.meta == small_set.meta
        assert loaded.is_lazy == lazy
        catalog = loaded.catalog
        assert catalog["name"].dtype.kind == "U"  # str, not bytes
        assert catalog["name"][3] == "gal-3é"
        assert catalog["ra"].unit == u.deg
        assert catalog["fluxes"].unit == u.nanomaggy and catalog["fluxes"].shape == (12, 3)
        assert catalog["id"].description == "galaxy id"
        assert catalog.meta["survey"] == "mock" and catalog.meta["nested"] == {"a": [1, 2, 3]}
        assert isinstance(loaded.stacks["sdss"].images, h5py.Dataset if lazy else np.ndarray)


def test_file_layout(small_set, tmp_path):
    path = small_set.save(tmp_path / "set.h5")
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "clapkit.GalaxySet"
        assert f.attrs["format_version"] == 1
        assert f.attrs["clapkit_version"] == clapkit.__version__
        assert f.attrs["n_galaxies"] == 12
        assert f.attrs["complete"]
        images = f["images/sdss"]
        assert images.dtype == np.float32 and images.chunks == (1, 5, 8, 8)
        assert list(images.attrs["bands"]) == ["u", "g", "r", "i", "z"]
        assert images.attrs["units"] == "nanomaggy"
        assert "images/sdss_mask" not in f


def test_mask_round_trip(make_catalog, make_stack, tmp_path):
    stack = make_stack(5)
    stack.images[2, 1, 3, 3] = np.nan
    gs = GalaxySet(make_catalog(5), {"sdss": stack}, nonfinite="mask")
    gs.save(tmp_path / "m.h5")
    with GalaxySet.load(tmp_path / "m.h5") as loaded:
        mask = loaded.stacks["sdss"].mask
        assert mask.dtype == bool and mask.compression == "gzip"
        np.testing.assert_array_equal(mask[()], gs.stacks["sdss"].mask)
        assert loaded.stacks["sdss"].n_masked == 1
        sub = loaded[[2, 0]]
        assert sub.stacks["sdss"].n_masked == 1 and sub.stacks["sdss"].mask[0, 1, 3, 3]
        assert loaded[[0, 1]].stacks["sdss"].mask is None


def test_empty_set_round_trip(make_catalog, make_stack, tmp_path):
    gs = GalaxySet(make_catalog(0), {"sdss": make_stack(0)})
    gs.save(tmp_path / "e.h5")
    loaded = GalaxySet.load(tmp_path / "e.h5", lazy=False)
    assert len(loaded) == 0 and loaded.stacks["sdss"].shape == (0, 3, 8, 8)


class _Recorder:
    """Stands in for an h5py.Dataset and records which rows are read."""

    def __init__(self, dataset):
        self.dataset, self.reads = dataset, []
        self.shape, self.dtype = dataset.shape, dataset.dtype

    def __getitem__(self, key):
        self.reads.append(key)
        return self.dataset[key]


def test_lazy_indexing_reads_only_requested_rows(small_set, tmp_path):
    small_set.save(tmp_path / "set.h5")
    with GalaxySet.load(tmp_path / "set.h5") as gs:
        recorder = _Recorder(gs.stacks["sdss"].images)
        gs.stacks["sdss"].images = recorder
        sub = gs[[9, 2, 5]]
        # Sorted, one slice per run of rows; nothing else is read.
        assert recorder.reads == [slice(2, 3), slice(5, 6), slice(9, 10)]
        np.testing.assert_array_equal(sub.ids, small_set.ids[[9, 2, 5]])
        np.testing.assert_array_equal(
            sub.stacks["sdss"].images, small_set.stacks["sdss"].images[[9, 2, 5]]
        )
        np.testing.assert_array_equal(
            sub.stacks["cfht"].images, small_set.stacks["cfht"].images[[9, 2, 5]]
        )
        recorder.reads.clear()
        sub = gs[[6, 4, 5, 8]]  # runs 4-6 and 8, then reordered
        assert recorder.reads == [slice(4, 7), slice(8, 9)]
        np.testing.assert_array_equal(
            sub.stacks["sdss"].images, small_set.stacks["sdss"].images[[6, 4, 5, 8]]
        )
        recorder.reads.clear()
        batches = list(gs.batches(5))
        assert recorder.reads == [slice(0, 5), slice(5, 10), slice(10, 12)]
        assert not any(b.is_lazy for b in batches)


def test_read_rows_from_hdf5_matches_numpy(tmp_path):
    data = np.random.default_rng(0).normal(size=(30, 2, 3, 3)).astype(np.float32)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("x", data=data, chunks=(1, 2, 3, 3))
    with h5py.File(tmp_path / "d.h5", "r") as f:
        for index in ([29, 0, 1, 2, 15, 14, 2], [5], [], list(range(30))[::-1]):
            index = np.array(index, dtype=int)
            np.testing.assert_array_equal(read_rows(f["x"], index), data[index])


def test_lazy_batches_and_splits(small_set, tmp_path):
    small_set.with_splits(seed=2).save(tmp_path / "set.h5")
    with GalaxySet.load(tmp_path / "set.h5") as gs:
        test_ids = np.concatenate([b.ids for b in gs.batches(2, split="test")])
        np.testing.assert_array_equal(test_ids, gs.split("test").ids)
        assert gs.meta["split"]["seed"] == 2


def test_closed_set_is_refused(small_set, tmp_path):
    small_set.save(tmp_path / "set.h5")
    gs = GalaxySet.load(tmp_path / "set.h5")
    gs.close()
    assert gs.closed
    with pytest.raises(ClapkitError, match="was closed"):
        gs[0]
    gs.close()  # twice is fine


def test_save_lazy_set_to_new_path(small_set, tmp_path, monkeypatch):
    small_set.save(tmp_path / "a.h5")
    monkeypatch.setattr(hdf5, "_COPY_BYTES", 1)  # one galaxy per copy step
    with GalaxySet.load(tmp_path / "a.h5") as gs:
        gs.save(tmp_path / "b.h5")
        # Overwriting the very file it reads from also works (write to temp, then rename).
        gs.save(tmp_path / "a.h5", overwrite=True)
    for name in ("a.h5", "b.h5"):
        with GalaxySet.load(tmp_path / name) as loaded:
            _assert_same(small_set, loaded)


def test_existing_file_untouched_without_overwrite(small_set, tmp_path):
    path = tmp_path / "set.h5"
    path.write_bytes(b"precious")
    with pytest.raises(OverwriteError, match="already exists"):
        small_set.save(path)
    assert path.read_bytes() == b"precious"
    small_set.save(path, overwrite=True)
    assert len(GalaxySet.load(path, lazy=False)) == 12


def test_failure_mid_write_leaves_old_file_and_no_temp(small_set, tmp_path, monkeypatch):
    path = tmp_path / "set.h5"
    small_set[:3].save(path)
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    # The catalog is already in the temp file when the images fail.
    monkeypatch.setattr(hdf5, "_copy_rows", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        small_set.save(path, overwrite=True)
    assert path.read_bytes() == before
    with pytest.raises(RuntimeError):
        small_set.save(tmp_path / "new.h5")
    assert sorted(os.listdir(tmp_path)) == ["set.h5"]


def test_save_validates_first(small_set, tmp_path):
    small_set.catalog["z"][0] = np.nan
    with pytest.raises(ClapkitError, match="column 'z'"):
        small_set.save(tmp_path / "set.h5")
    assert not (tmp_path / "set.h5").exists()


def test_unstorable_catalog_is_a_validation_error(small_set, tmp_path):
    small_set.catalog.meta["bad"] = object()
    with pytest.raises(ValidationError, match="catalog cannot be stored in HDF5"):
        small_set.save(tmp_path / "set.h5")
    assert os.listdir(tmp_path) == []


# -- bad files -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match=r"nothere\.h5: no such file"):
        GalaxySet.load(tmp_path / "nothere.h5")


def test_truncated_file(small_set, tmp_path):
    path = small_set.save(tmp_path / "set.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=r"set\.h5: cannot be opened as HDF5; .*truncated"):
        GalaxySet.load(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(FileFormatError, match=r"noise\.h5: not an HDF5 file"):
        GalaxySet.load(path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.h5").touch()
    with pytest.raises(FileFormatError, match="empty"):
        GalaxySet.load(tmp_path / "empty.h5")


def test_foreign_hdf5(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(FileFormatError, match=r"foreign\.h5: was not written by clapkit"):
        GalaxySet.load(path)
    with h5py.File(path, "a") as f:
        f.attrs["format"] = "somebody.else"
    with pytest.raises(FileFormatError, match=r"was not written by clapkit.*somebody\.else"):
        GalaxySet.load(path)


def test_incomplete_write(small_set, tmp_path):
    path = small_set.save(tmp_path / "set.h5")
    with h5py.File(path, "a") as f:
        del f.attrs["complete"]
    with pytest.raises(FileFormatError, match=r"set\.h5: incomplete write"):
        GalaxySet.load(path)


def test_newer_format_version(small_set, tmp_path):
    path = small_set.save(tmp_path / "set.h5")
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 2
    with pytest.raises(FileFormatError, match=r"set\.h5: format_version 2 .*newer clapkit"):
        GalaxySet.load(path)


def test_inconsistent_contents(small_set, tmp_path):
    path = small_set.save(tmp_path / "set.h5")
    with h5py.File(path, "a") as f:
        f["images/sdss"].attrs["bands"] = ["u", "g"]
    with pytest.raises(FileFormatError, match=r"set\.h5: contents fail validation.*2 band names"):
        GalaxySet.load(path)
