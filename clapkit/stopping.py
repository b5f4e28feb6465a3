"""A stop request that survives being raised in the wrong place.

``clapkit`` commands turn SIGTERM into :class:`KeyboardInterrupt`, as Ctrl-C does, so
that cleanup runs. But Python runs a signal handler wherever the main thread happens
to be, and an exception raised inside a weakref callback or a ``__del__`` (h5py and
PyTorch trigger many) is printed and ignored: the command would carry on as if never
asked to stop. So the handler also records the request here, and long loops call
:func:`check_stop` between steps, which raises again where it cannot be lost.
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request_stop() -> None:
    """Record that the process was asked to stop (from a signal handler)."""
    _requested.set()


def clear_stop() -> None:
    """Forget a stop request (when the command that received it has ended)."""
    _requested.clear()


def stop_requested() -> bool:
    """Whether a stop was requested and not yet cleared."""
    return _requested.is_set()


def check_stop() -> None:
    """Raise :class:`KeyboardInterrupt` if a stop was requested; call it between steps.

    Examples
    --------
    >>> check_stop()  # nothing requested: returns
    >>> request_stop()
    >>> try:
    ...     check_stop()
    ... except KeyboardInterrupt:
    ...     print("stopped")
    stopped
    >>> clear_stop()
    """
    if _requested.is_set():
        raise KeyboardInterrupt
