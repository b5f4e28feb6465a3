"""The mock survey: physically grounded multi-band galaxy images with known truth.

Galaxies are drawn from kcorrect fits to the real SDSS main sample (:mod:`.population`),
given bulge + disk morphology tied to their SED and mass (:mod:`.morphology`), dust
(:mod:`.dust`) and fluxes in SDSS, CFHT MegaCam and WISE bands (:mod:`.seds`,
:mod:`.photometry`), selected like the SDSS main sample, and rendered with GalSim in the
``sdss`` and ``cfhtls`` instruments of surveycodex (:mod:`.instruments`, :mod:`.render`).
:func:`true_graph` is the generative process as a graph over catalog columns.
Surveys are made in independent chunks (:mod:`.survey`), computed in this process, in
forked workers, or on a Dask cluster (:mod:`.on_dask`), with the same result bit for bit.

The names here are imported on first use, so that the command line starts without
GalSim.

Examples
--------
>>> from clapkit.sim import simulate
>>> survey = simulate(4, seed=1)
>>> survey.instruments
['sdss', 'cfhtls']
"""

from clapkit.lazy import lazy_exports

#: Every public name and the module that defines it, imported on first use.
_EXPORTS = {
    "true_graph": "graph",
    "INSTRUMENTS": "instruments",
    "instrument": "instruments",
    "CHUNK_SIZE": "survey",
    "REPEATS": "survey",
    "STACKS": "survey",
    "simulate": "survey",
    "simulate_chunk": "survey",
    "simulate_to_file": "survey",
    "split_unpaired": "survey",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
