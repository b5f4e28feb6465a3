"""``clapkit train``, ``predict`` and ``evaluate``: photometric redshifts through a run directory.

``train`` fits CLAP and the baselines into a run directory, ``predict`` writes every
trained method's PDFs, ``evaluate`` scores PDF files or a whole run. The handlers import
the pipeline (and with it PyTorch) only when they run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from clapkit.errors import FileFormatError, ValidationError
from clapkit.presets import add_preset_argument


def _cmd_train(args: argparse.Namespace) -> int:
    from clapkit.photoz.nondetections import parse_mag_limits
    from clapkit.photoz.pipeline import PhotoZTrainSettings, load_config_file, train_run

    config = load_config_file(args.config) if args.config else {}
    if args.preset:
        config["preset"] = args.preset
    settings = PhotoZTrainSettings(
        args.method,
        config=config,
        features=args.features.split(",") if args.features else None,
        instrument=args.instrument,
        z_max=args.zmax,
        n_bins=args.bins,
        nondetect=args.nondetect,
        mag_limits=parse_mag_limits(args.mag_limits),
    )
    record = train_run(
        args.data,
        args.run,
        settings,
        overwrite=args.overwrite,
        progress=not args.quiet,
        device=args.device,
    )
    done = [m for m, s in record["methods"].items() if s.get("status") == "done"]
    print(f"trained {', '.join(done)} in {args.run}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    split = None if args.split == "all" else args.split
    if args.dask is None:
        given = [
            flag
            for flag, value in (
                ("--dask-workers", args.dask_workers),
                ("--partition-size", args.partition_size),
                ("--method", args.method),
            )
            if value is not None
        ]
        if given:
            raise ValidationError(f"{', '.join(given)} only apply with --dask")
    else:
        from clapkit.photoz.dask_predict import DEFAULT_PARTITION_SIZE, predict_run_dask

        predict_run_dask(
            args.run,
            args.data,
            args.dask,
            workers=args.dask_workers,
            partition_size=args.partition_size or DEFAULT_PARTITION_SIZE,
            split=split,
            methods=args.method,
            overwrite=args.overwrite,
        )
        print(f"wrote PDFs to {args.run}/pdfs/")
        return 0
    from clapkit.photoz.pipeline import predict_run

    predict_run(
        args.run,
        args.data,
        split=split,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(f"wrote PDFs to {args.run}/pdfs/")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from astropy.table import Table

    from clapkit.atomic import check_writable
    from clapkit.evaluation import (
        EvaluationSettings,
        evaluate_file,
        evaluate_run,
        format_table,
        write_metrics,
    )
    from clapkit.runs import RunDir

    truth = None
    if args.truth:
        try:
            truth = Table.read(args.truth)
        except (OSError, ValueError) as err:
            raise FileFormatError(f"{args.truth}: cannot read the truth catalog ({err})") from err
    settings = EvaluationSettings(
        outlier_threshold=args.outlier_threshold,
        z_bins=args.z_bins,
        id_column=args.id_column,
        z_column=args.z_column,
    )
    if args.run:
        out = Path(args.out) if args.out else RunDir(args.run).metrics_path
        results = evaluate_run(
            RunDir(args.run), settings, out=out, overwrite=args.overwrite, truth=truth
        )
    else:
        out = args.out
        if out:
            check_writable(out, args.overwrite)
        results = {}
        for path in args.pdfs:
            method, result = evaluate_file(
                path, truth, settings.id_column, settings.z_column, **settings.pdf_options()
            )
            results[method if method not in results else str(path)] = result
        if out:
            write_metrics(out, results, args.overwrite)
    print(format_table(results))
    if out:
        print(f"\nwrote {out}")
    return 0


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``train`` to the ``clapkit`` parser."""
    train = commands.add_parser(
        "train",
        help="train CLAP and/or the baselines on the train split of a GalaxySet file",
        description="Train photo-z methods into a run directory; a killed run resumes.",
    )
    train.add_argument("--data", required=True, help="GalaxySet HDF5 file with z and split")
    train.add_argument("--run", required=True, help="run directory")
    train.add_argument(
        "--method",
        default="clap",
        help="clap, softmax, mcdropout, ensemble, temperature, knn_photometry; "
        "comma-separated or 'all' (default: %(default)s)",
    )
    train.add_argument("--config", help="JSON file overriding the preset's settings")
    # No default here: a --config file may name the preset (else it is cpu).
    add_preset_argument(
        train, "photo-z", default=None, default_help="the --config file's, else cpu"
    )
    train.add_argument(
        "--features", help="comma-separated catalog columns: use the MLP encoder on them"
    )
    train.add_argument("--instrument", help="image stack to use (default: sdss or the only one)")
    train.add_argument(
        "--nondetect",
        type=float,
        help="the catalog's non-detection magnitude (e.g. 99): such magnitudes, masked "
        "ones and NaN become the band's --mag-limits value, their errors 1.0 (as RAIL does)",
    )
    train.add_argument(
        "--mag-limits", help="limiting magnitudes for --nondetect, e.g. u=22.0,g=22.2,r=21.8"
    )
    train.add_argument("--zmax", type=float, help="upper edge of the redshift grid")
    train.add_argument("--bins", type=int, default=180, help="redshift bins (default: 180)")
    train.add_argument(
        "--device",
        default="cpu",
        help="where the networks train: cpu, cuda, cuda:N or auto (default: %(default)s)",
    )
    train.add_argument("--overwrite", action="store_true", help="replace a different training")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=_cmd_train)


def add_predict_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``predict`` to the ``clapkit`` parser."""
    predict = commands.add_parser(
        "predict",
        help="PDFs of every trained method for the galaxies of a GalaxySet file",
        description="Write RUN/pdfs/<method>.h5 for the test split (or --split) of the data.",
    )
    predict.add_argument("--run", required=True, help="run directory made by `clapkit train`")
    predict.add_argument("--data", required=True, help="GalaxySet HDF5 file")
    predict.add_argument(
        "--split", default="test", help="split to predict, or 'all' (default: %(default)s)"
    )
    predict.add_argument("--overwrite", action="store_true", help="replace existing PDF files")
    predict.add_argument("--quiet", action="store_true", help="no progress bars")
    predict.add_argument(
        "--dask",
        metavar="local|ADDRESS",
        help="predict partitions of the data on a Dask cluster: 'local' (worker processes "
        "on this machine) or a scheduler address; --data may then also be a FITS or "
        "Parquet catalog (id, mag_<band>, ...) for methods that read photometry only",
    )
    predict.add_argument(
        "--dask-workers", type=int, help="worker processes of --dask local (default: one per core)"
    )
    predict.add_argument(
        "--partition-size", type=int, help="input rows per Dask task (default: 10000)"
    )
    predict.add_argument(
        "--method",
        help="with --dask: trained methods to predict, comma-separated (knn_photometry, "
        "clap; default: every trained one)",
    )
    predict.set_defaults(func=_cmd_predict)


def add_evaluate_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` to the ``clapkit`` parser."""
    evaluate = commands.add_parser(
        "evaluate",
        help="metrics of PDF files (or every method of a run) against true redshifts",
        description="Print σ_MAD, bias, outliers, CRPS, PIT KS/W1 and coverage; write them as JSON.",
    )
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="evaluate every DIR/pdfs/*.h5 and write DIR/metrics.json")
    source.add_argument("--pdfs", nargs="+", metavar="FILE", help="PDF files written by clapkit")
    evaluate.add_argument(
        "--truth", help="catalog (FITS/ECSV/CSV) with true redshifts, matched on id"
    )
    evaluate.add_argument("--id-column", default="id")
    evaluate.add_argument("--z-column", default="z")
    evaluate.add_argument("--out", help="JSON output (default with --run: DIR/metrics.json)")
    evaluate.add_argument(
        "--outlier-threshold", type=float, default=0.05, help="|δz| cut (default 0.05)"
    )
    evaluate.add_argument("--z-bins", type=int, default=5, help="equal-count bins of true redshift")
    evaluate.add_argument(
        "--overwrite", action="store_true", help="replace an existing JSON output"
    )
    evaluate.set_defaults(func=_cmd_evaluate)
