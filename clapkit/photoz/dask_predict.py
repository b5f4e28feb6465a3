"""``clapkit predict --dask``: PDFs of catalogs of any size on a Dask cluster.

The input is cut into partitions of consecutive rows (:mod:`~clapkit.photoz.catalog_source`:
a GalaxySet file, or a FITS or Parquet catalog for the methods that read photometry only).
Each partition is one task: a worker reads its rows, predicts every method and returns
the PDFs; this process writes them, **in input order**, into datasets preallocated in
temporary files that are renamed only once every partition has been written
(:func:`clapkit.atomic.atomic_path`). At most ``in_flight`` partitions are submitted and
not yet written, so memory is bounded by the partition size on the workers and here,
whatever the catalog's size.

The trained models are loaded by each worker process from the run directory once and
kept for the following tasks (:func:`_worker_models`), rather than scattered from here:
the workers read the input file from a shared file system anyway, so they see the run
directory too; a worker that dies and is restarted reloads the models itself, where data
scattered to it would be lost with it; and nothing large passes through the scheduler.
The fingerprint of ``train.json`` travels with each task, so a worker never predicts with
a model other than the one this process checked.

Methods: ``knn_photometry`` and ``clap`` (with a refit head trained at ``clapkit train``:
``refit_on`` ``valid`` or ``train_loo``). Every stage of both is computed galaxy by
galaxy: neighbours in a fixed training set, a recalibration fitted at training, networks
in eval mode (batch norm reads its stored statistics), a per-galaxy ensemble; so a
partition's PDFs do not depend on the other partitions. They equal the single-process
run's bit for bit for the photometry KNN and CLAP's raw KNN stage; the network stages
agree to float32 rounding only, because PyTorch's CPU kernels depend on how many rows
share a forward pass (measured here: passes of 1-3 rows differ from passes of 4 or more
by up to 5e-7 in the latent vectors, 1e-8 in the probabilities; larger passes agree bit
for bit), and a partition's last rows share a pass with fewer galaxies than in one
process. Refused: CLAP's published refit on the
targets (``refit_on="target"``) trains a head on the KNN PDFs of the whole target set at
once, so its PDFs depend on which galaxies are predicted together; and the other methods,
not yet distributed. ``clap/knn.h5`` (the dashboards' neighbours and the 2-D projection of
every target's latent vector, fitted on all of them) is not written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from clapkit.atomic import atomic_path, check_writable
from clapkit.checks import check_int
from clapkit.dask_cluster import check_address, dask_client
from clapkit.errors import FileFormatError, ValidationError
from clapkit.h5files import mark_complete, open_checked, write_header
from clapkit.photoz.catalog_source import CatalogSource, open_source
from clapkit.photoz.network_inputs import InputSpec, check_compatible
from clapkit.runs import PDF_FORMAT, PDF_FORMAT_VERSION, RunDir

#: Methods ``predict --dask`` distributes.
DASK_METHODS = ("knn_photometry", "clap")
#: Rows per partition by default: ~10 MB of PDFs per output on 180 bins.
DEFAULT_PARTITION_SIZE = 10_000


@dataclass(frozen=True)
class _Job:
    """What every task needs besides its rows: small, sent with each task."""

    run_root: str
    fingerprint: str
    methods: tuple[str, ...]
    split: str | None


def predict_run_dask(
    run: str | os.PathLike | RunDir,
    data: str | os.PathLike,
    address: str,
    *,
    workers: int | None = None,
    partition_size: int = DEFAULT_PARTITION_SIZE,
    split: str | None = "test",
    methods: Sequence[str] | None = None,
    overwrite: bool = False,
    in_flight: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """:func:`~clapkit.photoz.pipeline.predict_run` on a Dask cluster, partition by partition.

    Parameters
    ----------
    run : path-like or RunDir
        A run directory made by ``clapkit train``.
    data : path-like
        A GalaxySet file, or a FITS or Parquet catalog (photometry-only methods, or CLAP
        trained on catalog features).
    address : str
        ``"local"`` or a Dask scheduler's address (:func:`clapkit.dask_cluster.dask_client`).
    workers : int, optional
        Worker processes of a local cluster.
    partition_size : int
        Input rows per task.
    split : str or None
        The split to predict (when the catalog has a ``split`` column); None for all.
    methods : sequence of str, optional
        Trained methods to predict (default: every trained one; all must be in
        :data:`DASK_METHODS`).
    overwrite : bool
        Replace existing PDF files.
    in_flight : int, optional
        Partitions submitted and not yet written (default: twice the workers).
    log : callable
        Receives one line per step and about every tenth of the galaxies.

    Returns
    -------
    dict
        The ``predict.json`` record: timings and the cluster used.

    Examples
    --------
    >>> predict_run_dask("runs/photoz", "survey.parquet", "local")  # doctest: +SKIP
    """
    from clapkit.photoz.pipeline import _method_configs, output_methods
    from clapkit.photoz.training_state import TrainingRun

    run = run if isinstance(run, RunDir) else RunDir(run)
    check_address(address)
    if workers is not None:
        check_int(workers, "--dask-workers")
    partition_size = check_int(partition_size, "--partition-size")
    if in_flight is not None:
        in_flight = check_int(in_flight, "in_flight")
    tracker = TrainingRun(run)
    if not tracker.exists():
        raise FileFormatError(f"{run.root}: no train.json; run `clapkit train` first")
    record = tracker.read()
    trained = [m for m, s in record["methods"].items() if s.get("status") == "done"]
    selected = _select_methods(run, trained, methods)
    spec = InputSpec.from_dict(record["input_spec"])
    config = record["config"]
    if "clap" in selected and _method_configs(config, spec.kind)[0].refit_on == "target":
        raise ValidationError(
            "CLAP's refit on the targets (refit_on='target', the published default) trains "
            "on the whole target set at once, so it cannot be split into partitions; train "
            'with --config \'{"clap": {"refit_on": "valid"}}\' (or \'train_loo\') to '
            "predict with --dask"
        )
    outputs = output_methods(selected)
    for name in outputs:
        check_writable(run.pdf_path(name), overwrite)
    if "clap" in selected:
        check_writable(run.clap_details_path, overwrite)
    source = open_source(data)
    _check_inputs(source, spec, run, selected, data)
    partitions = list(source.partitions(partition_size, split))
    n_galaxies = sum(count for *_, count in partitions)
    if n_galaxies == 0:
        raise ValidationError(f"{data}: no galaxies to predict (split {split!r})")

    job = _Job(str(run.root.resolve()), _fingerprint(run), tuple(selected), split)
    start = time.perf_counter()
    with dask_client(address, workers) as client:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        window = in_flight or 2 * n_workers
        log(
            f"predicting {n_galaxies} galaxies of {data} in {len(partitions)} partitions "
            f"on {n_workers} Dask workers"
        )
        seconds = _stream(
            client,
            source,
            job,
            partitions,
            window,
            run,
            outputs,
            config,
            spec,
            overwrite,
            n_galaxies,
            log,
        )
    wall = time.perf_counter() - start
    if "clap" in selected and run.clap_details_path.exists():
        # The dashboards' neighbours of an earlier prediction describe other galaxies.
        run.clap_details_path.unlink()
    timings = {
        method: {
            "seconds": wall,
            "worker_seconds": seconds[method],
            "galaxies_per_second": n_galaxies / wall,
        }
        for method in selected
    }
    predicted = {
        "data": run.relative_data_path(data),
        "split": split,
        "timings": timings,
        "dask": {
            "address": address,
            "workers": n_workers,
            "partition_size": partition_size,
            "partitions": len(partitions),
            "galaxies": n_galaxies,
            "wall_seconds": wall,
        },
    }
    run.write_json(run.predict_record_path, predicted, overwrite=True)
    log(f"{', '.join(selected)}: {n_galaxies} galaxies in {wall:.1f} s on {n_workers} workers")
    return predicted


def _select_methods(run: RunDir, trained: list[str], methods: Sequence[str] | None) -> list[str]:
    from clapkit.photoz.pipeline import parse_methods

    if not trained:
        raise ValidationError(f"{run.root}: no method has finished training")
    selected = trained if methods is None else parse_methods(methods)
    untrained = [m for m in selected if m not in trained]
    if untrained:
        raise ValidationError(f"{run.root}: methods {untrained} are not trained; it has {trained}")
    other = [m for m in selected if m not in DASK_METHODS]
    if other:
        raise ValidationError(
            f"--dask predicts {list(DASK_METHODS)}, not {other}: choose with "
            f"--method {','.join(m for m in selected if m in DASK_METHODS) or 'knn_photometry'}, "
            "or predict those without --dask"
        )
    return selected


def _check_inputs(
    source: CatalogSource, spec: InputSpec, run: RunDir, methods: list[str], data: Any
) -> None:
    """Refuse, before any work, an input the methods cannot read."""
    if "clap" in methods:
        if spec.kind == "images" and source.kind != "galaxyset":
            raise ValidationError(
                f"{data}: a {source.kind.upper()} catalog has no images, but this run's CLAP "
                f"reads {spec.instrument!r} images; give the GalaxySet file, or predict "
                "--method knn_photometry"
            )
        try:
            check_compatible(spec, source.read(0, min(1, source.n_rows)))
        except ValidationError as err:
            raise ValidationError(f"{data}: {err}") from err
    if "knn_photometry" in methods:
        path = run.model_dir("knn_photometry") / "knn.h5"
        with open_checked(path, "clapkit.KNNPhotoZ", 1, "a KNN model") as f:
            bands = json.loads(f.attrs["bands"])
        missing = [f"mag_{b}" for b in bands if f"mag_{b}" not in source.columns]
        if missing:
            raise ValidationError(
                f"{data}: knn_photometry reads columns {[f'mag_{b}' for b in bands]}; "
                f"missing {missing}"
            )


def _fingerprint(run: RunDir) -> str:
    return hashlib.sha256(run.train_record_path.read_bytes()).hexdigest()


def _stream(
    client, source, job, partitions, window, run, outputs, config, spec, overwrite, n_galaxies, log
) -> dict[str, float]:
    """Submit the partitions, at most ``window`` ahead of the one being written, and write
    each one's PDFs as it arrives in order; returns the worker seconds of each method."""
    from distributed import KilledWorker

    seconds = dict.fromkeys(job.methods, 0.0)
    futures: list[Any] = []
    with contextlib.ExitStack() as files:
        writers = {
            name: _PDFWriter(
                files,
                run.pdf_path(name),
                n_galaxies,
                spec.edges,
                source,
                {"method": _method_of(name), **config},
                name,
                overwrite,
            )
            for name in outputs
        }
        offset, next_report = 0, n_galaxies / 10
        for i, (start, stop, count) in enumerate(partitions):
            while len(futures) < min(len(partitions), i + window):
                j = len(futures)
                futures.append(
                    client.submit(
                        _predict_partition,
                        source,
                        *partitions[j][:2],
                        job,
                        key=f"clapkit-predict-{job.fingerprint[:8]}"
                        f"-{os.getpid()}-{j}-{time.time_ns()}",
                    )
                )
            try:
                result = futures[i].result()
            except KilledWorker as err:
                raise ValidationError(
                    f"Dask workers died repeatedly predicting rows {start}-{stop} of "
                    f"{source.path} (out of memory? try a smaller --partition-size); no PDF "
                    f"file was written ({err})"
                ) from err
            futures[i] = None  # the result is released on the cluster once written
            if len(result["ids"]) != count:
                raise ValidationError(
                    f"{source.path} rows {start}-{stop}: expected {count} galaxies, a worker "
                    f"read {len(result['ids'])} (was the file changed during the run?)"
                )
            for name, writer in writers.items():
                writer.write(offset, result, name)
            for method, s in result["seconds"].items():
                seconds[method] += s
            offset += count
            if offset >= next_report and offset < n_galaxies:
                log(f"predicted {offset} / {n_galaxies} galaxies")
                next_report += n_galaxies / 10
        for writer in writers.values():
            writer.finish()
    return seconds


def _method_of(output: str) -> str:
    return "clap" if output.startswith("clap") else output


class _PDFWriter:
    """One PDF file (the layout of :func:`clapkit.runs.save_pdfs`) written partition by
    partition into datasets sized for every galaxy, under a temporary name."""

    def __init__(self, files, path, n, edges, source, config, method, overwrite) -> None:
        tmp = files.enter_context(atomic_path(path, overwrite))
        self.file = files.enter_context(h5py.File(tmp, "w"))
        self.n, self.z_known = n, True
        write_header(self.file, PDF_FORMAT, PDF_FORMAT_VERSION)
        self.file.attrs["method"] = method
        from clapkit.runs import _plain

        self.file.attrs["config"] = json.dumps(config, default=_plain)
        id_dtype = source.id_dtype()
        self.file.create_dataset(
            "id", shape=(n,), dtype=h5py.string_dtype() if id_dtype.kind == "O" else id_dtype
        )
        self.file.create_dataset("edges", data=np.asarray(edges, dtype=np.float64))
        self.file.create_dataset("z_true", shape=(n,), dtype=np.float64)

    def write(self, offset: int, result: dict[str, Any], name: str) -> None:
        p = result["pdfs"][name]
        rows = slice(offset, offset + len(p))
        if "p" not in self.file:  # its dtype is the first partition's
            chunk_rows = max(1, min(self.n, 4096))
            self.file.create_dataset(
                "p", shape=(self.n, p.shape[1]), dtype=p.dtype, chunks=(chunk_rows, p.shape[1])
            )
        self.file["p"][rows] = p
        ids = result["ids"]
        self.file["id"][rows] = ids.astype(object) if ids.dtype.kind in "UO" else ids
        self.file["z_true"][rows] = result["z"]
        self.z_known &= bool(np.all(np.isfinite(result["z"])))
        for column, values in result["columns"].get(name, {}).items():
            key = f"columns/{column}"
            if key not in self.file:
                self.file.create_dataset(key, shape=(self.n,), dtype=values.dtype)
            self.file[key][rows] = values

    def finish(self) -> None:
        if not self.z_known:  # as the single-process run: truths only when all are known
            del self.file["z_true"]
        mark_complete(self.file)


# ----------------------------------------------------------------------------- on the workers

# One run's models per worker process, loaded by its first task.
_MODELS: dict[tuple[str, str], dict[str, Any]] = {}


def _worker_models(job: _Job) -> dict[str, Any]:
    """The models of ``job``'s run, loaded once per process (the first task loads them,
    the following reuse them); refused if the run changed since the job was planned."""
    key = (job.run_root, job.fingerprint)
    if key in _MODELS:
        return _MODELS[key]
    from clapkit.photoz.clap import load_realisation
    from clapkit.photoz.pipeline import _method_configs, load_knn_photometry
    from clapkit.photoz.training_state import TrainingRun

    run = RunDir(job.run_root)
    if _fingerprint(run) != job.fingerprint:
        raise ValidationError(f"{run.root}: train.json changed during the prediction")
    record = TrainingRun(run).read()
    spec = InputSpec.from_dict(record["input_spec"])
    config = record["config"]
    clap_config = _method_configs(config, spec.kind)[0]
    models: dict[str, Any] = {"spec": spec, "config": config, "clap_config": clap_config}
    if "knn_photometry" in job.methods:
        models["knn_photometry"] = load_knn_photometry(run.model_dir("knn_photometry"), spec)
    if "clap" in job.methods:
        folder = run.model_dir("clap")
        models["clap"] = [
            load_realisation(folder / f"r{r}", spec, clap_config)
            for r in range(clap_config.n_realisations)
        ]
    _MODELS.clear()  # a worker keeps one run's models at a time
    _MODELS[key] = models
    return models


def _predict_partition(source: CatalogSource, start: int, stop: int, job: _Job) -> dict[str, Any]:
    """Every method's PDFs of rows ``start`` to ``stop`` (the task of one partition)."""
    from clapkit.metrics import PDFs
    from clapkit.photoz.clap import predict_clap
    from clapkit.photoz.network_inputs import network_inputs
    from clapkit.photoz.pipeline import predict_knn_photometry

    models = _worker_models(job)
    spec, config = models["spec"], models["config"]
    edges = np.asarray(spec.edges)
    rows = source.read(start, stop, job.split)
    catalog = rows.catalog
    z = (
        np.asarray(catalog["z"], dtype=np.float64)
        if "z" in catalog.colnames
        else np.full(len(rows), np.nan)
    )
    out: dict[str, Any] = {"ids": rows.ids, "z": z, "pdfs": {}, "columns": {}, "seconds": {}}
    try:
        for method in job.methods:
            begin = time.perf_counter()
            if method == "knn_photometry":
                out["pdfs"][method] = predict_knn_photometry(*models[method], spec, rows)
            else:
                prediction = predict_clap(
                    RunDir(job.run_root).model_dir("clap"),
                    spec,
                    models["clap_config"],
                    network_inputs(spec, rows),
                    seed=int(config["seed"]),
                    realisations=models["clap"],
                )
                for name, p in prediction.pdfs.items():
                    out["pdfs"][name] = p
                    out["columns"][name] = {"novelty": prediction.novelty}
            out["seconds"][method] = time.perf_counter() - begin
    except ValidationError as err:
        raise ValidationError(f"{source.path} rows {start}-{stop}: {err}") from err
    # As the single-process run: each PDF checked and normalised as PDFs does.
    out["pdfs"] = {name: PDFs(p, edges).p for name, p in out["pdfs"].items()}
    return out
