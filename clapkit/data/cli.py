"""``clapkit import-fits`` and ``clapkit sdss``: galaxies from outside, as GalaxySet files.

``import-fits`` reads users' FITS cutouts and catalogs, ``sdss`` the real SDSS catalog
shipped with kcorrect.
"""

from __future__ import annotations

import argparse


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


def add_import_fits_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``import-fits`` to the ``clapkit`` parser."""
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


def add_sdss_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``sdss`` to the ``clapkit`` parser."""
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
