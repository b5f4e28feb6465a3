"""``clapkit figures``: the paper figures of a run directory, with their numbers as CSV."""

from __future__ import annotations

import argparse

# Spelled out, not imported from clapkit.plots.style: the parser is built for every
# clapkit command, and importing matplotlib would slow them all (a test keeps these equal).
WIDTH_CHOICES = ("double", "single")
DEFAULT_FORMAT = "pdf,png"


def add_figures_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``figures`` to the ``clapkit`` parser."""
    figures = commands.add_parser(
        "figures",
        help="publication-ready figures of every pillar a run holds, with their numbers as CSV",
        description="Draw every figure the run has data for (calibration, a galaxy and its "
        "neighbours, translation, stellar mass), sized to a journal column, and write each "
        "in the given formats with <name>.csv beside it. Pillars the run lacks are skipped, "
        "naming the command that makes them.",
    )
    figures.add_argument("--run", required=True, help="run directory")
    figures.add_argument("--out", required=True, help="folder of the figures (created)")
    figures.add_argument(
        "--format",
        default=DEFAULT_FORMAT,
        help="comma-separated matplotlib formats (default: %(default)s)",
    )
    figures.add_argument(
        "--width",
        default="single",
        choices=WIDTH_CHOICES,
        help="one or two journal columns (default: %(default)s)",
    )
    figures.add_argument("--galaxy", help="id of the galaxy figure's galaxy (default: median z)")
    figures.add_argument("--overwrite", action="store_true", help="replace existing figures")
    figures.add_argument("--quiet", action="store_true", help="no progress bar")
    figures.set_defaults(func=_cmd_figures)


def _cmd_figures(args: argparse.Namespace) -> int:
    from clapkit.plots.from_run import write_figures

    paths, plan = write_figures(
        args.run,
        args.out,
        formats=args.format,
        width=args.width,
        galaxy=args.galaxy,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    for skipped in plan.skipped:
        print(f"skipped {skipped}")
    print(f"wrote {len(plan.figures)} figures ({len(paths)} files) to {args.out}:")
    for name in plan.names:
        print(f"  {name}")
    return 0
