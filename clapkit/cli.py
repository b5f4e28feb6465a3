"""The ``clapkit`` command.

Sub-commands follow the data flow of ``design.md``: ``demo`` runs the main job on the
embedded data; ``simulate`` writes a mock survey and ``sdss`` the real SDSS catalog as
GalaxySet files; ``train`` and ``predict`` run CLAP and the baselines through a run
directory; ``evaluate`` scores PDF files or a whole run; ``export`` writes a run's PDFs
as a qp file, a FITS table or CSV; ``serve`` serves the dashboards
on a run (``demo`` does too, once built); ``translate train|apply|evaluate`` translates
galaxy images between surveys and judges the result; ``interpret
train|causal|pid|attribute`` asks why networks estimate stellar mass as they do; ``import-fits`` turns users' FITS cutouts and
catalogs into a GalaxySet file. Errors caused by input print one line
and exit with status 2; nothing is overwritten without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import clapkit
from clapkit.data.cli import add_import_fits_parser, add_sdss_parser
from clapkit.errors import ClapkitError
from clapkit.interop.cli import add_export_parser
from clapkit.interpret.cli import add_interpret_parser
from clapkit.photoz.cli import add_evaluate_parser, add_predict_parser, add_train_parser
from clapkit.plots.cli import add_figures_parser
from clapkit.serve_cli import add_demo_parser, add_serve_parser
from clapkit.sim.cli import add_simulate_parser
from clapkit.stopping import clear_stop, request_stop, stop_requested
from clapkit.translate.cli import add_translate_parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``clapkit`` command."""
    parser = argparse.ArgumentParser(
        prog="clapkit",
        description="Calibrated, inspectable deep-learning estimates of galaxy properties.",
    )
    parser.add_argument("--version", action="version", version=f"clapkit {clapkit.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # Each command's options and handler live with its pillar; the order here is the
    # order of `clapkit --help`, which follows the data flow.
    add_demo_parser(commands)
    add_serve_parser(commands)
    add_evaluate_parser(commands)
    add_export_parser(commands)
    add_simulate_parser(commands)
    add_import_fits_parser(commands)
    add_sdss_parser(commands)
    add_train_parser(commands)
    add_predict_parser(commands)
    add_translate_parser(commands)
    add_interpret_parser(commands)
    add_figures_parser(commands)
    return parser


def _interrupt(signum: int, frame: Any) -> None:
    request_stop()  # kept, in case this raise lands where Python ignores it
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM (``kill``, a batch scheduler's stop) ends a command as Ctrl-C does: the
    cleanup runs (temporary files removed, worker processes stopped) and the user reads
    one line. Python's default would end the process on the spot.

    Both signals also record a stop request (:mod:`clapkit.stopping`): where the raised
    :class:`KeyboardInterrupt` lands in a weakref callback or ``__del__``, Python
    ignores it, and the next :func:`~clapkit.stopping.check_stop` raises it again; the
    "Exception ignored" report of the lost one is not shown.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be handled in the main thread
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous_hook = sys.unraisablehook

    def hide_lost_interrupts(unraisable: Any) -> None:
        if not (isinstance(unraisable.exc_value, KeyboardInterrupt) and stop_requested()):
            previous_hook(unraisable)

    sys.unraisablehook = hide_lost_interrupts
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = previous_hook
        clear_stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``clapkit`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with _interruptible():
            return args.func(args)
    except ClapkitError as err:
        print(f"clapkit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        # A training stopped by the signal says where it resumes (TrainingStopped).
        detail = f" ({err})" if str(err) else ""
        print(f"clapkit {args.command}: interrupted{detail}", file=sys.stderr)
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
