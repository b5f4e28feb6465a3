"""``python -m clapkit``: the ``clapkit`` command, and the entry RAIL's pipelines use.

A RAIL pipeline (ceci) runs each stage as ``python3 -m <package> <Stage> --config ...``,
the package being the top of the stage's module: for :mod:`clapkit.interop.rail`'s
stages that is ``python3 -m clapkit CLAPInformer ...``. Those names go to ceci (which
imports RAIL only then); anything else is the ``clapkit`` command.
"""

from __future__ import annotations

import sys

#: The stages of :mod:`clapkit.interop.rail`, as a pipeline names them.
RAIL_STAGES = ("CLAPInformer", "CLAPEstimator", "KNNPhotometryInformer", "KNNPhotometryEstimator")


def main() -> int:
    """Run a RAIL stage or the ``clapkit`` command; returns the exit status."""
    if len(sys.argv) > 1 and sys.argv[1] in RAIL_STAGES:
        from ceci import PipelineStage

        import clapkit.interop.rail  # noqa: F401  (registers the stages with ceci)

        return PipelineStage.main()
    from clapkit.cli import main as clapkit_main

    return clapkit_main()


if __name__ == "__main__":
    sys.exit(main())
