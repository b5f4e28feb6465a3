"""``clapkit simulate``: a mock survey written as a GalaxySet file."""

from __future__ import annotations

import argparse
import os

DEFAULT_INSTRUMENTS = "sdss,cfhtls"


def _cmd_simulate(args: argparse.Namespace) -> int:
    from clapkit.checks import check_int
    from clapkit.errors import ValidationError
    from clapkit.sim import simulate_to_file

    if args.no_images and args.instruments is not None:
        raise ValidationError("--no-images writes no image stacks; leave out --instruments")
    if args.dask is not None and args.workers is not None:
        raise ValidationError(
            "--workers (local processes) and --dask exclude each other; "
            "with --dask local, set the processes with --dask-workers"
        )
    if args.dask is None and args.dask_workers is not None:
        raise ValidationError("--dask-workers needs --dask local")
    if args.dask_workers is not None:
        check_int(args.dask_workers, "--dask-workers")
    listed = args.instruments or DEFAULT_INSTRUMENTS
    instruments = tuple(name.strip() for name in listed.split(",") if name.strip())
    if args.workers is not None:
        check_int(args.workers, "--workers")
    workers = 1 if args.dask is not None else args.workers or os.cpu_count() or 1
    path = simulate_to_file(
        args.out,
        args.n,
        args.seed,
        instruments,
        workers=workers,
        progress=not args.quiet,
        overwrite=args.overwrite,
        observing=args.observing,
        images=not args.no_images,
        dask=args.dask,
        dask_workers=args.dask_workers,
    )
    stacks = "no images" if args.no_images else f"instruments {', '.join(instruments)}"
    print(
        f"wrote {path}: {args.n} galaxies, {stacks}, seed {args.seed}"
        + ("" if args.observing == "fixed" else f", {args.observing} observing conditions")
        + ("" if args.dask is None else f", on Dask ({args.dask})")
    )
    return 0


def add_simulate_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``simulate`` to the ``clapkit`` parser."""
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
        help="image stacks among sdss, cfhtls and sdss_repeat, a second SDSS exposure with "
        "new noise (the target of the s2s translation control) "
        f"(default: {DEFAULT_INSTRUMENTS})",
    )
    simulate.add_argument(
        "--no-images",
        action="store_true",
        help="the catalog alone, fast (no GalSim rendering): the same catalog as the "
        "image run with the same seed",
    )
    simulate.add_argument(
        "--observing",
        default="fixed",
        help="observing conditions: fixed (every galaxy at the nominal PSF and sky) or "
        "varying (per-galaxy seeing and sky, recorded as psf_fwhm_<instrument>_<band> and "
        "sky_<instrument>_<band> columns) (default: %(default)s)",
    )
    simulate.add_argument("--workers", type=int, help="processes (default: all cores)")
    simulate.add_argument(
        "--dask",
        metavar="local|ADDRESS",
        help="compute the chunks on a Dask cluster: 'local' (worker processes on this "
        "machine) or a scheduler address (tcp://host:8786); the same file, byte for byte",
    )
    simulate.add_argument(
        "--dask-workers",
        type=int,
        help="worker processes of --dask local (default: one per core)",
    )
    simulate.add_argument("--overwrite", action="store_true")
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.set_defaults(func=_cmd_simulate)
