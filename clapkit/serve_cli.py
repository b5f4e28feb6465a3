"""``clapkit demo`` and ``clapkit serve``: build the demo run, serve the dashboards on a run."""

from __future__ import annotations

import argparse
import signal
import subprocess
from pathlib import Path

from clapkit.errors import ClapkitError


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


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=5006, help="port (default: %(default)s)")
    parser.add_argument(
        "--address", default="localhost", help="address to listen on (default: %(default)s)"
    )


def add_demo_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the ``clapkit`` parser."""
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


def add_serve_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the ``clapkit`` parser."""
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
