"""Exceptions raised by clapkit.

Every error a user can cause by giving clapkit bad input is a :class:`ClapkitError`, so
the command line can print its message without a traceback. Validation errors are also
``ValueError`` and file errors also ``OSError``, so generic handlers keep working.
"""


class ClapkitError(Exception):
    """Base class of every error caused by bad input or a bad file."""


class ValidationError(ClapkitError, ValueError):
    """Input data violate what a function expects (shape, values, columns, ids)."""


class FileFormatError(ClapkitError, OSError):
    """A file is missing, truncated, or was not written by clapkit."""


class OverwriteError(ClapkitError, FileExistsError):
    """An output exists and overwriting was not asked for."""
