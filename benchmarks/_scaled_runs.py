"""The translation and stellar-mass parts of the load benchmark's run, at survey scale.

Their pipelines train networks (five translation families, CLAP per input set, MI
classifiers): hours on CPUs for 100,000 test galaxies. What the two dashboards do per
session scales with the *number of rows* they read (morphology scatter, per-galaxy image
lookup, the mass scatter, the per-galaxy MI histograms), not with their values. So a
small run is made for real by :func:`clapkit.testing.synthetic_translation_run` and
:func:`clapkit.testing.synthetic_interpret_run` (every model trained, applied, evaluated),
and its per-galaxy files are then tiled to the requested number of test galaxies
through the library's own readers and writers: copy ``k`` of galaxy ``id`` becomes
``id + k * offset``, consistently in every file. Only test-split rows are kept (the
dashboards show the test galaxies). Summary files (``evaluation.json``, ``pid.json``,
``local_tests.json``, the attribution maps) are the small run's, with the galaxy counts
they state updated where the dashboards print them.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
from astropy.table import Table, vstack
from tqdm.auto import tqdm

from clapkit.atomic import atomic_path, write_json
from clapkit.data import GalaxySet
from clapkit.data.hdf5 import GalaxySetWriter
from clapkit.data.stack import ImageStack
from clapkit.h5files import mark_complete, write_header

#: Galaxies per block when tiling image stacks (memory stays bounded).
BLOCK = 4096


def id_offset(ids: np.ndarray) -> int:
    """The step between copies of an id: a power of ten above every id.

    Examples
    --------
    >>> id_offset(np.array([11, 14, 179]))
    1000
    """
    return 10 ** len(str(int(np.max(ids)) + 1))


def tile_ids(ids: np.ndarray, copies: int, offset: int) -> np.ndarray:
    """``ids`` repeated ``copies`` times, copy ``k`` shifted by ``k * offset``.

    Examples
    --------
    >>> tile_ids(np.array([1, 2]), 3, 10).tolist()
    [1, 2, 11, 12, 21, 22]
    """
    ids = np.asarray(ids, dtype=np.int64)
    return np.concatenate([ids + k * offset for k in range(copies)])


def _tile_rows(values: np.ndarray, copies: int) -> np.ndarray:
    return np.concatenate([values] * copies)


def _tile_table(table: Table, copies: int, offset: int) -> Table:
    tiled = vstack([table] * copies, metadata_conflicts="silent")
    tiled["id"] = tile_ids(np.asarray(table["id"]), copies, offset)
    return tiled


def tile_galaxyset(
    source: Path, out: Path, ids: np.ndarray, copies: int, offset: int, *, progress: bool
) -> None:
    """The galaxies ``ids`` of ``source`` (in that order), tiled ``copies`` times."""
    with GalaxySet.load(source) as galaxies:
        order = np.argsort(galaxies.ids)
        rows = order[np.searchsorted(np.asarray(galaxies.ids), ids, sorter=order)]
        catalog = _tile_table(galaxies.catalog[rows], copies, offset)
        stacks = {
            name: np.asarray(stack.images[:])[rows] for name, stack in galaxies.stacks.items()
        }
        templates = {
            name: ImageStack(
                stacks[name][:1], stack.bands, stack.pixel_scale, stack.zero_points, stack.units
            )
            for name, stack in galaxies.stacks.items()
        }
        meta = dict(galaxies.meta)
    n, small = len(catalog), len(ids)
    with GalaxySetWriter(out, n, templates, overwrite=True) as writer:
        for start in tqdm(range(0, n, BLOCK), desc=f"tile {out.name}", disable=not progress):
            stop = min(n, start + BLOCK)
            take = np.arange(start, stop) % small
            writer.write_rows(start, {name: images[take] for name, images in stacks.items()})
        writer.finish(catalog, meta)


def scale_translation(small: Path, root: Path, n_test: int, *, progress: bool) -> int:
    """Copy ``small``'s ``translate/`` into ``root`` with ``n_test`` or more test galaxies.

    Returns the number of test galaxies written (a whole number of copies).
    """
    tasks = sorted(p.parent for p in (small / "translate").glob("*/evaluation.json"))
    if not tasks:
        raise RuntimeError(f"{small}: no evaluated translation task to scale")
    n_written = 0
    for folder in tasks:
        evaluation = json.loads((folder / "evaluation.json").read_text())
        data = Path(evaluation["data"])
        data = data if data.is_absolute() else small / data
        real = Table.read(folder / "morphology_real.h5", path="morphology")
        ids = np.asarray(real["id"])
        copies = math.ceil(n_test / len(ids))
        offset = id_offset(ids)
        target = root / "translate" / folder.name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        survey = root / f"translation_survey_{folder.name}.h5"
        tile_galaxyset(data, survey, ids, copies, offset, progress=progress)
        for path in sorted(folder.glob("morphology_*.h5")):
            table = _tile_table(Table.read(path, path="morphology"), copies, offset)
            with atomic_path(target / path.name, overwrite=True) as tmp:
                table.write(
                    tmp, format="hdf5", path="morphology", serialize_meta=True, overwrite=True
                )
        for path in sorted(folder.glob("*/translated.h5")):
            (target / path.parent.name).mkdir()
            out = target / path.parent.name / "translated.h5"
            tile_galaxyset(path, out, ids, copies, offset, progress=progress)
        evaluation["data"] = survey.name  # relative to the run, as evaluate_task writes it
        evaluation["n_galaxies"] = len(ids) * copies
        write_json(target / "evaluation.json", evaluation, overwrite=True)
        n_written = len(ids) * copies
    return n_written


def scale_interpret(small: Path, root: Path, n_test: int) -> int:
    """Copy ``small``'s ``interpret/`` into ``root`` with ``n_test`` or more test galaxies.

    Each input set's ``prediction.h5`` keeps its test rows, tiled; ``per_galaxy.h5`` (the
    MI terms of the test galaxies) is tiled alike. Returns the test galaxies written.
    """
    source, target = small / "interpret", root / "interpret"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    with h5py.File(source / "pid" / "per_galaxy.h5", "r") as f:
        test_ids = f["ids"][()]
    predictions = sorted(source.glob("mass/*/prediction.h5"))
    with h5py.File(predictions[0], "r") as f:
        offset = id_offset(f["ids"][()])
    copies = math.ceil(n_test / len(test_ids))
    for path in predictions:
        out = target / path.relative_to(source)
        with h5py.File(path, "r") as f:
            split = f["split"][()].astype(str)
            test = np.flatnonzero(split == "test")
            if not np.array_equal(f["ids"][()][test], test_ids):
                raise RuntimeError(f"{path}: test galaxies differ from per_galaxy.h5's")
            _write_tiled(f, out, test, copies, offset)
    path = source / "pid" / "per_galaxy.h5"
    with h5py.File(path, "r") as f:
        _write_tiled(f, target / "pid" / "per_galaxy.h5", np.arange(len(test_ids)), copies, offset)
    return len(test_ids) * copies


def _write_tiled(f: h5py.File, out: Path, rows: np.ndarray, copies: int, offset: int) -> None:
    """Every dataset of ``f`` with one row per galaxy: ``rows`` tiled; others copied.

    The header (format, version) and attributes are the source's; the file is marked
    complete last, as the library's writers do.
    """
    n = f["ids"].shape[0]
    with atomic_path(out, overwrite=True) as tmp, h5py.File(tmp, "w") as g:
        write_header(g, str(f.attrs["format"]), int(f.attrs["format_version"]))
        for key, value in f.attrs.items():
            if key not in g.attrs and key != "complete":
                g.attrs[key] = value

        def copy(name: str, item) -> None:
            if isinstance(item, h5py.Group):
                g.require_group(name)
                return
            values = item[()]
            if name == "ids":
                values = tile_ids(values[rows], copies, offset)
            elif values.ndim and values.shape[0] == n:
                values = _tile_rows(values[rows], copies)
            g.create_dataset(name, data=values)

        f.visititems(copy)
        mark_complete(g)
