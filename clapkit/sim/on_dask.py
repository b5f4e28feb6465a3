"""Simulation chunks computed on a Dask cluster, handed back in chunk order.

Chunk ``k`` of a survey depends only on the seed and ``k`` (:func:`~.survey.simulate_chunk`),
so any worker may compute it: the file written from chunks computed on a cluster is the
one a single process writes. The parent keeps a bounded window of chunks in flight (two
per worker thread) and takes their results strictly in order, so its memory holds one
chunk at a time and the workers' at most the window; a worker that dies mid-chunk is
replaced by Dask, which reruns its chunk elsewhere (the same chunk, the same bytes).

Workers are separate processes (not forks of the parent): each builds the kcorrect
models and the population prior on its first chunk and keeps them for the next ones.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from clapkit.dask_cluster import check_address, dask_client
from clapkit.errors import ValidationError

#: Chunks in flight per worker thread: one running and one queued behind it, so that a
#: worker never waits for the parent between chunks.
IN_FLIGHT_PER_THREAD = 2


def check_dask(dask: Any, workers: int, dask_workers: int | None) -> None:
    """Check the Dask settings of a simulation before anything runs.

    ``dask`` is ``None`` (no Dask), ``"local"``, a scheduler address, or a running
    ``distributed.Client``; ``workers`` (local processes) must then be left at 1, and
    ``dask_workers`` only goes with ``dask``.

    Examples
    --------
    >>> check_dask(None, 4, None)
    >>> check_dask("local", 2, None)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: workers (local processes) and dask (a Dask cluster) \
exclude each other; with dask, set the number of Dask workers with dask_workers
    """
    from clapkit.checks import check_int

    if dask is None:
        if dask_workers is not None:
            raise ValidationError("dask_workers needs dask ('local' or a scheduler address)")
        return
    if workers != 1:
        raise ValidationError(
            "workers (local processes) and dask (a Dask cluster) exclude each other; "
            "with dask, set the number of Dask workers with dask_workers"
        )
    if dask_workers is not None:
        check_int(dask_workers, "dask_workers")
    if isinstance(dask, str):
        check_address(dask)
    elif not callable(getattr(dask, "submit", None)):
        raise ValidationError(
            f"dask must be 'local', a scheduler address or a distributed.Client, got {dask!r}"
        )


@contextlib.contextmanager
def results_on_dask(
    dask: Any, dask_workers: int | None, function: Callable[[Any], Any], tasks: Iterable[Any]
) -> Iterator[Iterator[Any]]:
    """``function(task)`` for every task, computed on Dask, yielded in task order.

    On leaving (finished, an error, Ctrl-C) the chunks still in flight are cancelled, and
    a cluster started here (``dask="local"``) or a client opened here is closed; a
    ``distributed.Client`` passed in stays open.

    Parameters
    ----------
    dask : str or distributed.Client
        ``"local"``, a scheduler address, or a client to use as it is.
    dask_workers : int, optional
        Processes of a local cluster (default: one per core).
    function : callable
        Applied to each task on a worker; must be importable there.
    tasks : iterable
        The tasks, in the order their results are wanted.

    Yields
    ------
    iterator
        The results, in order.
    """
    with contextlib.ExitStack() as resources:
        if isinstance(dask, str):
            client = resources.enter_context(dask_client(dask, dask_workers))
        else:
            client = dask
        results = _ordered(client, function, tasks)
        resources.enter_context(contextlib.closing(results))
        yield results


def _ordered(client: Any, function: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
    from distributed import KilledWorker

    pending = iter(enumerate(tasks))
    in_flight: deque = deque()
    # One key prefix per run: two runs of the same survey on one cluster share nothing.
    run = uuid.uuid4().hex[:12]

    def submit_more() -> None:
        threads = sum(client.nthreads().values())
        while len(in_flight) < IN_FLIGHT_PER_THREAD * max(threads, 1):
            item = next(pending, None)
            if item is None:
                return
            k, task = item
            future = client.submit(function, task, key=f"clapkit-chunk-{run}-{k}", pure=False)
            in_flight.append((k, future))

    try:
        submit_more()
        while in_flight:
            k, future = in_flight.popleft()
            try:
                result = future.result()
            except KilledWorker as err:
                # Dask retries a chunk whose worker died; this is after the last try.
                raise RuntimeError(
                    f"chunk {k} of the simulation: the Dask workers that ran it died "
                    f"(out of memory, or killed): {' '.join(str(err).split())}"
                ) from err
            future.release()
            submit_more()
            yield result
    finally:
        for _, future in in_flight:
            future.cancel()
        in_flight.clear()
