"""``clapkit simulate``: a mock survey written as a GalaxySet file."""

from __future__ import annotations

import argparse
import os


def _cmd_simulate(args: argparse.Namespace) -> int:
    from clapkit.checks import check_int
    from clapkit.sim import simulate_to_file

    instruments = tuple(name.strip() for name in args.instruments.split(",") if name.strip())
    if args.workers is not None:
        check_int(args.workers, "--workers")
    workers = args.workers or os.cpu_count() or 1
    path = simulate_to_file(
        args.out,
        args.n,
        args.seed,
        instruments,
        workers=workers,
        progress=not args.quiet,
        overwrite=args.overwrite,
        observing=args.observing,
    )
    print(
        f"wrote {path}: {args.n} galaxies, instruments {', '.join(instruments)}, seed {args.seed}"
        + ("" if args.observing == "fixed" else f", {args.observing} observing conditions")
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
        default="sdss,cfhtls",
        help="image stacks among sdss, cfhtls and sdss_repeat, a second SDSS exposure with "
        "new noise (the target of the s2s translation control) (default: %(default)s)",
    )
    simulate.add_argument(
        "--observing",
        default="fixed",
        help="observing conditions: fixed (every galaxy at the nominal PSF and sky) or "
        "varying (per-galaxy seeing and sky, recorded as psf_fwhm_<instrument>_<band> and "
        "sky_<instrument>_<band> columns) (default: %(default)s)",
    )
    simulate.add_argument("--workers", type=int, help="processes (default: all cores)")
    simulate.add_argument("--overwrite", action="store_true")
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.set_defaults(func=_cmd_simulate)
