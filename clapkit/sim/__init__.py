"""The mock survey: physically grounded multi-band galaxy images with known truth.

Galaxies are drawn from kcorrect fits to the real SDSS main sample (:mod:`.population`),
given bulge + disk morphology tied to their SED and mass (:mod:`.morphology`), dust
(:mod:`.dust`) and fluxes in SDSS, CFHT MegaCam and WISE bands (:mod:`.seds`,
:mod:`.photometry`), selected like the SDSS main sample, and rendered with GalSim in the
``sdss`` and ``cfhtls`` instruments of surveycodex (:mod:`.instruments`, :mod:`.render`).
:func:`true_graph` is the generative process as a graph over catalog columns.

Examples
--------
>>> from clapkit.sim import simulate
>>> survey = simulate(4, seed=1)
>>> survey.instruments
['sdss', 'cfhtls']
"""

from clapkit.sim.graph import true_graph
from clapkit.sim.instruments import INSTRUMENTS, instrument
from clapkit.sim.survey import (
    CHUNK_SIZE,
    REPEATS,
    STACKS,
    simulate,
    simulate_chunk,
    simulate_to_file,
    split_unpaired,
)

__all__ = [
    "CHUNK_SIZE",
    "INSTRUMENTS",
    "REPEATS",
    "STACKS",
    "instrument",
    "simulate",
    "simulate_chunk",
    "simulate_to_file",
    "split_unpaired",
    "true_graph",
]
