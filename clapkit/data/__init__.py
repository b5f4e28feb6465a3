"""Galaxy data for clapkit: the GalaxySet model, its file format, imports and real data.

- :class:`GalaxySet`: a catalog (``id``, ``z``, ...) plus image stacks per instrument,
  validated on entry, saved to and lazily loaded from HDF5.
- :class:`ImageStack`: ``float32`` images ``(N, bands, H, W)`` with band names, pixel
  scale, zero points and units.
- :func:`assign_splits`: reproducible train/valid/test splits keyed on ids.
- :func:`import_fits`: users' own FITS cutouts and catalogs.
- :func:`sdss_catalog`: the 10,000 real SDSS galaxies shipped with kcorrect.

The names here are imported on first use, so that the command line starts without
astropy and h5py.

Examples
--------
>>> import numpy as np
>>> from astropy.table import Table
>>> from clapkit.data import GalaxySet, ImageStack
>>> stack = ImageStack(np.zeros((2, 1, 4, 4), np.float32), ("r",), 0.396, (22.5,), "nanomaggy")
>>> GalaxySet(Table({"id": [1, 2], "z": [0.1, 0.2]}), {"sdss": stack})
<GalaxySet: 2 galaxies, stacks {sdss: (2, 1, 4, 4)}, in memory>
"""

from clapkit.lazy import lazy_exports

#: Every public name and the module that defines it, imported on first use.
_EXPORTS = {
    "import_fits": "fits_import",
    "GalaxySet": "galaxyset",
    "GalaxySetWriter": "hdf5",
    "sdss_catalog": "sdss",
    "DEFAULT_FRACTIONS": "splits",
    "assign_splits": "splits",
    "split_counts": "splits",
    "ImageStack": "stack",
    "validate_catalog": "validation",
    "validate_stack": "validation",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
