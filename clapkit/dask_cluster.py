"""Connecting to a Dask cluster: ``--dask local`` or ``--dask ADDRESS``.

clapkit spreads independent pieces of work (simulation chunks, prediction partitions)
over ``dask.distributed`` rather than a scheduler of its own. ``local`` starts a
:class:`~dask.distributed.LocalCluster` of worker processes on this machine for the
duration of the command; any other value is the address of a running scheduler
(``tcp://host:8786``, e.g. one started by dask-jobqueue on a SLURM cluster).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from clapkit.errors import ValidationError

#: ``--dask`` value that starts a cluster on this machine.
LOCAL = "local"


def _distributed() -> Any:
    try:
        import dask.distributed
    except ImportError as err:  # an optional extra
        raise ValidationError(
            "--dask needs Dask: install clapkit with the 'dask' extra (pip install 'clapkit[dask]')"
        ) from err
    return dask.distributed


def check_address(address: str) -> str:
    """``local`` or a scheduler address (``tcp://host:port``, ``host:port``...).

    Examples
    --------
    >>> check_address("local"), check_address("tcp://10.0.0.5:8786")
    ('local', 'tcp://10.0.0.5:8786')
    >>> check_address(" ")
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: --dask must be 'local' or a scheduler address \
like tcp://host:8786, got ' '
    """
    if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address):
        raise ValidationError(
            f"--dask must be 'local' or a scheduler address like tcp://host:8786, got {address!r}"
        )
    return address


@contextlib.contextmanager
def dask_client(address: str, workers: int | None = None, *, timeout: float = 30) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for the command's lifetime.

    Parameters
    ----------
    address : str
        ``"local"``: a LocalCluster of ``workers`` single-threaded processes (default:
        one per core), closed on exit. Otherwise a running scheduler's address.
    workers : int, optional
        Worker processes of a local cluster; ignored for a remote scheduler.
    timeout : float
        Seconds to wait for a remote scheduler before giving up with one line.

    Yields
    ------
    dask.distributed.Client
    """
    distributed = _distributed()
    check_address(address)
    # Dask's own log lines (worker start/stop, "Restarting worker") are for cluster
    # operators; the user of a clapkit command reads clapkit's messages.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if address == LOCAL:
        from clapkit.checks import check_int

        if workers is not None:
            check_int(workers, "--dask-workers", minimum=1)
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # no fixed port: several clusters may run at once
        )
        try:
            with distributed.Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError) as err:
        raise ValidationError(f"--dask {address}: no Dask scheduler answered ({err})") from err
    with client:
        yield client
