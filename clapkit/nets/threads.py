"""How many threads PyTorch may use inside a block."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with PyTorch on ``n`` threads, then restore the previous setting.

    Small networks are all per-operation overhead: a second thread only adds waiting, and
    on a busy machine two spinning threads can be ten times slower than one. ``None``
    leaves the setting alone. The setting is process-wide, so this is not safe while
    other Python threads run PyTorch.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
