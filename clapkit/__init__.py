"""clapkit: calibrated, inspectable deep-learning estimates of galaxy properties.

Subpackages follow the science workflow:

- :mod:`clapkit.data`: the :class:`~clapkit.data.GalaxySet` data model, HDF5/FITS I/O,
  validation, splits and the real SDSS catalog shipped with kcorrect.
- :mod:`clapkit.metrics`: redshift PDFs on a grid and their calibration and accuracy metrics.
- :mod:`clapkit.photoz`: photometric-redshift estimators (CLAP and baselines).
- :mod:`clapkit.runs`: the run directory, the only hand-off between stages and to the app.

The core library never imports Panel; the dashboards live in ``app/``.
"""

__version__ = "0.1.0"
