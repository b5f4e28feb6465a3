"""Galaxy data for clapkit: the GalaxySet model, its file format, imports and real data.

- :class:`GalaxySet`: a catalog (``id``, ``z``, ...) plus image stacks per instrument,
  validated on entry, saved to and lazily loaded from HDF5.
- :class:`ImageStack`: ``float32`` images ``(N, bands, H, W)`` with band names, pixel
  scale, zero points and units.
- :func:`assign_splits`: reproducible train/valid/test splits keyed on ids.
- :func:`import_fits`: users' own FITS cutouts and catalogs.
- :func:`sdss_catalog`: the 10,000 real SDSS galaxies shipped with kcorrect.

Examples
--------
>>> import numpy as np
>>> from astropy.table import Table
>>> from clapkit.data import GalaxySet, ImageStack
>>> stack = ImageStack(np.zeros((2, 1, 4, 4), np.float32), ("r",), 0.396, (22.5,), "nanomaggy")
>>> GalaxySet(Table({"id": [1, 2], "z": [0.1, 0.2]}), {"sdss": stack})
<GalaxySet: 2 galaxies, stacks {sdss: (2, 1, 4, 4)}, in memory>
"""

from clapkit.data.fits_import import import_fits
from clapkit.data.galaxyset import GalaxySet
from clapkit.data.hdf5 import GalaxySetWriter
from clapkit.data.sdss import sdss_catalog
from clapkit.data.splits import DEFAULT_FRACTIONS, assign_splits, split_counts
from clapkit.data.stack import ImageStack
from clapkit.data.validation import validate_catalog, validate_stack

__all__ = [
    "DEFAULT_FRACTIONS",
    "GalaxySet",
    "GalaxySetWriter",
    "ImageStack",
    "assign_splits",
    "import_fits",
    "sdss_catalog",
    "split_counts",
    "validate_catalog",
    "validate_stack",
]
