"""The ``clapkit`` command.

Sub-commands follow the data flow of ``design.md``: ``demo`` runs the main job on the
embedded data; ``simulate`` writes a mock survey and ``sdss`` the real SDSS catalog as
GalaxySet files; ``train`` and ``predict`` run CLAP and the baselines through a run
directory; ``evaluate`` scores PDF files or a whole run; ``serve`` serves the dashboards
on a run (``demo`` does too, once built); ``translate train|apply|evaluate`` translates
galaxy images between surveys and judges the result; ``interpret
train|causal|pid|attribute`` asks why networks estimate stellar mass as they do; ``import-fits`` turns users' FITS cutouts and
catalogs into a GalaxySet file. Errors caused by input print one line
and exit with status 2; nothing is overwritten without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import clapkit
from clapkit.errors import ClapkitError, FileFormatError
from clapkit.interpret.cli import add_interpret_parser
from clapkit.translate.cli import add_translate_parser


def _cmd_demo(args: argparse.Namespace) -> int:
    from clapkit.demo import build_demo, report

    if not args.no_serve:
        _check_port(args.port)  # before the demo spends ten minutes building
    metrics = build_demo(args.run, rebuild=args.rebuild, progress=not args.quiet)
    print(report(metrics, args.run))
    if args.no_serve:
        return 0
    return _cmd_serve(args)


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise ClapkitError(f"--port must be a TCP port in 1..65535, got {port}")


def _cmd_serve(args: argparse.Namespace) -> int:
    # The dashboards import Panel; the library does not. The command line that serves
    # them lives with the app (clapkit_app.serving), which itself imports no Panel.
    _check_port(args.port)
    try:
        from clapkit_app.serving import serve_command
    except ImportError as err:
        raise ClapkitError(
            "the dashboards are not installed: from a clapkit source tree, run "
            "`pip install -e .[app]` (or `make demo`)"
        ) from err
    try:
        command = serve_command(args.run, port=args.port, address=args.address)
    except FileNotFoundError as err:
        raise ClapkitError(str(err)) from err
    if not Path(args.run).is_dir():
        print(f"note: {args.run} does not exist; the pages will say how to make it")
    print(
        f"serving the dashboards of {args.run} at http://{args.address}:{args.port} "
        "(press Ctrl-C to stop)",
        flush=True,
    )
    server = subprocess.Popen(command)
    stopped = []

    def stop(signum, frame):
        # A service manager stops us with SIGTERM: pass it on, or the Panel server would
        # keep serving (and holding the port) after this process has gone.
        stopped.append(signum)
        server.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        status = server.wait()
    except KeyboardInterrupt:  # the terminal sent SIGINT to the server as well
        server.wait()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0 if stopped else status


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from astropy.table import Table

    from clapkit.atomic import check_writable
    from clapkit.evaluation import evaluate_file, evaluate_run, format_table, write_metrics
    from clapkit.runs import RunDir

    truth = None
    if args.truth:
        try:
            truth = Table.read(args.truth)
        except (OSError, ValueError) as err:
            raise FileFormatError(f"{args.truth}: cannot read the truth catalog ({err})") from err
    options = {
        "truth": truth,
        "id_column": args.id_column,
        "z_column": args.z_column,
        "outlier_threshold": args.outlier_threshold,
        "z_bins": args.z_bins,
    }
    if args.run:
        out = Path(args.out) if args.out else RunDir(args.run).metrics_path
        results = evaluate_run(RunDir(args.run), out, overwrite=args.overwrite, **options)
    else:
        out = args.out
        if out:
            check_writable(out, args.overwrite)
        results = {}
        for path in args.pdfs:
            method, result = evaluate_file(path, **options)
            results[method if method not in results else str(path)] = result
        if out:
            write_metrics(out, results, args.overwrite)
    print(format_table(results))
    if out:
        print(f"\nwrote {out}")
    return 0


def _cmd_import_fits(args: argparse.Namespace) -> int:
    from clapkit.atomic import check_writable
    from clapkit.data import import_fits

    check_writable(args.out, args.overwrite)
    galaxies = import_fits(
        args.catalog,
        args.instrument,
        per_galaxy=args.per_galaxy,
        per_band=args.per_band,
        bands=args.bands.split(",") if args.bands else None,
        pixel_scale=args.pixel_scale,
        zero_points=[float(v) for v in args.zero_points.split(",")] if args.zero_points else None,
        units=args.units,
        id_column=args.id_column,
        z_column=args.z_column,
        nonfinite=args.nonfinite,
    )
    galaxies.save(args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}: {galaxies!r}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from clapkit.errors import ValidationError
    from clapkit.sim import simulate_to_file

    instruments = tuple(name.strip() for name in args.instruments.split(",") if name.strip())
    if args.workers is not None and args.workers < 1:
        raise ValidationError(f"--workers must be >= 1, got {args.workers}")
    workers = args.workers or os.cpu_count() or 1
    path = simulate_to_file(
        args.out,
        args.n,
        args.seed,
        instruments,
        workers=workers,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    print(
        f"wrote {path}: {args.n} galaxies, instruments {', '.join(instruments)}, seed {args.seed}"
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from clapkit.photoz.nondetections import parse_mag_limits
    from clapkit.photoz.pipeline import load_config_file, train_run

    config = load_config_file(args.config) if args.config else {}
    if args.preset:
        config["preset"] = args.preset
    record = train_run(
        args.data,
        args.run,
        args.method,
        config=config,
        features=args.features.split(",") if args.features else None,
        instrument=args.instrument,
        z_max=args.zmax,
        n_bins=args.bins,
        overwrite=args.overwrite,
        progress=not args.quiet,
        device=args.device,
        nondetect=args.nondetect,
        mag_limits=parse_mag_limits(args.mag_limits),
    )
    done = [m for m, s in record["methods"].items() if s.get("status") == "done"]
    print(f"trained {', '.join(done)} in {args.run}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from clapkit.photoz.pipeline import predict_run

    predict_run(
        args.run,
        args.data,
        split=None if args.split == "all" else args.split,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(f"wrote PDFs to {args.run}/pdfs/")
    return 0


def _cmd_sdss(args: argparse.Namespace) -> int:
    import numpy as np

    from clapkit.data import sdss_catalog
    from clapkit.errors import ValidationError

    if not args.zmax > 0:
        raise ValidationError(f"--zmax must be a redshift above 0, got {args.zmax}")
    galaxies = sdss_catalog()
    on_grid = np.asarray(galaxies.catalog["z"]) <= args.zmax
    if on_grid.sum() < 3:  # one galaxy per split at the very least
        lowest = float(np.min(np.asarray(galaxies.catalog["z"])))
        raise ValidationError(
            f"--zmax {args.zmax} keeps {int(on_grid.sum())} galaxies (the lowest z is {lowest:.4f})"
        )
    galaxies = galaxies[on_grid].with_splits(seed=args.seed)
    galaxies.save(args.out, overwrite=args.overwrite)
    print(
        f"wrote {args.out}: {len(galaxies)} real SDSS galaxies (kcorrect) with z <= {args.zmax} "
        f"({int((~on_grid).sum())} left out), splits seed {args.seed}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``clapkit`` command."""
    parser = argparse.ArgumentParser(
        prog="clapkit",
        description="Calibrated, inspectable deep-learning estimates of galaxy properties.",
    )
    parser.add_argument("--version", action="version", version=f"clapkit {clapkit.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="simulate a small mock survey, train CLAP and the baselines, print the side-by-side table, serve the app",
        description="Build (or reuse) the demo run, print its calibration and accuracy table "
        "and serve the dashboards on it (unless --no-serve).",
    )
    demo.add_argument(
        "--run", default="data/runs/demo", help="run directory (default: %(default)s)"
    )
    demo.add_argument("--rebuild", action="store_true", help="recompute even if the run is current")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument(
        "--no-serve", action="store_true", help="stop after building; do not serve the app"
    )
    _serve_options(demo)
    demo.set_defaults(func=_cmd_demo)

    serve = commands.add_parser(
        "serve",
        help="serve the dashboards (calibration explorer, neighbour browser, translation "
        "compare) on a run",
        description="Serve the Panel app on a run directory: / (landing), /calibration, "
        "/neighbours, /translation. Same as `panel serve app/*.py --index landing --args "
        "--run DIR`.",
    )
    serve.add_argument(
        "--run", default="data/runs/demo", help="run directory (default: %(default)s)"
    )
    _serve_options(serve)
    serve.set_defaults(func=_cmd_serve)

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

    simulate = commands.add_parser(
        "simulate",
        help="a mock survey: SDSS-selected galaxies from real kcorrect SEDs, GalSim images, known truth",
        description="Simulate N galaxies (after the SDSS main-sample selection) and write a GalaxySet.",
    )
    simulate.add_argument("--n", type=int, required=True, help="number of galaxies")
    simulate.add_argument(
        "--seed", type=int, required=True, help="same seed, same survey, bit for bit"
    )
    simulate.add_argument("--out", required=True, help="GalaxySet HDF5 file to write")
    simulate.add_argument(
        "--instruments",
        default="sdss,cfhtls",
        help="image stacks among sdss, cfhtls and sdss_repeat, a second SDSS exposure with "
        "new noise (the target of the s2s translation control) (default: %(default)s)",
    )
    simulate.add_argument("--workers", type=int, help="processes (default: all cores)")
    simulate.add_argument("--overwrite", action="store_true")
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.set_defaults(func=_cmd_simulate)

    importer = commands.add_parser(
        "import-fits",
        help="FITS cutouts + a catalog -> a GalaxySet HDF5 file",
        description="Import a catalog with one FITS cube per galaxy or one cube per band.",
    )
    importer.add_argument("--catalog", required=True, help="FITS/ECSV/CSV catalog with id and z")
    importer.add_argument("--instrument", required=True, help="name of the image stack, e.g. sdss")
    layout = importer.add_mutually_exclusive_group(required=True)
    layout.add_argument("--per-galaxy", metavar="PATTERN", help="e.g. 'cutouts/{id}.fits'")
    layout.add_argument("--per-band", nargs="+", metavar="FILE", help="one (N, H, W) cube per band")
    importer.add_argument("--bands", help="comma-separated band names, if headers lack them")
    importer.add_argument("--pixel-scale", type=float, help="arcsec/pixel, if headers lack it")
    importer.add_argument(
        "--zero-points", help="comma-separated AB zero points, if headers lack them"
    )
    importer.add_argument("--units", default="counts")
    importer.add_argument("--id-column", default="id")
    importer.add_argument("--z-column", default="z")
    importer.add_argument("--nonfinite", choices=["raise", "mask"], default="raise")
    importer.add_argument("--out", required=True, help="GalaxySet HDF5 file to write")
    importer.add_argument("--overwrite", action="store_true")
    importer.set_defaults(func=_cmd_import_fits)

    sdss = commands.add_parser(
        "sdss",
        help="write the real SDSS catalog shipped with kcorrect as a GalaxySet file",
        description="The 10,000 real SDSS galaxies (photometry, spec-z) with train/valid/test splits.",
    )
    sdss.add_argument("--out", required=True, help="GalaxySet HDF5 file to write")
    sdss.add_argument("--seed", type=int, default=0, help="split seed (default: %(default)s)")
    sdss.add_argument(
        "--zmax", type=float, default=0.4, help="keep z <= ZMAX (default: %(default)s)"
    )
    sdss.add_argument("--overwrite", action="store_true")
    sdss.set_defaults(func=_cmd_sdss)

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
    train.add_argument(
        "--preset", choices=["compact", "paper"], help="network size (default: compact)"
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
    predict.set_defaults(func=_cmd_predict)

    add_translate_parser(commands)
    add_interpret_parser(commands)
    return parser


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=5006, help="port (default: %(default)s)")
    parser.add_argument(
        "--address", default="localhost", help="address to listen on (default: %(default)s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``clapkit`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ClapkitError as err:
        print(f"clapkit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"clapkit {args.command}: interrupted", file=sys.stderr)
        return 2
    except Exception as err:
        # Another library's error (torch out of memory, a full disk...) still reaches the
        # user as one line; CLAPKIT_DEBUG=1 shows where it came from.
        if os.environ.get("CLAPKIT_DEBUG"):
            raise
        text = " ".join(str(err).split())
        print(
            f"clapkit {args.command}: error: {type(err).__name__}: {text} "
            "(CLAPKIT_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
