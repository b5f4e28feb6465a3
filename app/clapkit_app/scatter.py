"""How many points a scatter plot sends to the browser.

A run of 100,000 test galaxies would send every point of every scatter (the translation
page's four morphology panels, the stellar-mass scatter) to every session: megabytes of
JSON per session and seconds of drawing, for a cloud in which single points cannot be
told apart anyway. Above :data:`MAX_SCATTER_POINTS` a fixed random subset is drawn
instead, the same in every session and for every model or input set (so switching
compares the same galaxies), and the plot's title says how many are shown. Statistics
shown beside the plots are computed on every galaxy by the library, never on this
subset; the galaxy the user picked is always drawn (its star).
"""

from __future__ import annotations

import numpy as np

#: Most points one scatter plot draws.
MAX_SCATTER_POINTS = 10_000


def shown_rows(n: int, limit: int = MAX_SCATTER_POINTS, seed: int = 0) -> np.ndarray:
    """Rows of an ``n``-point scatter to draw: all of them up to ``limit``, else a fixed
    random ``limit`` of them, in increasing order.

    Examples
    --------
    >>> shown_rows(5).tolist()
    [0, 1, 2, 3, 4]
    >>> rows = shown_rows(100_000)
    >>> rows.size, bool(np.all(np.diff(rows) > 0)), bool(np.array_equal(rows, shown_rows(100_000)))
    (10000, True, True)
    """
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def shown_note(n: int, limit: int = MAX_SCATTER_POINTS) -> str:
    """What a title adds when the scatter draws a subset ('' when it draws everything).

    Examples
    --------
    >>> shown_note(100), shown_note(100_000)
    ('', ' (10,000 of 100,000 shown)')
    """
    return "" if n <= limit else f" ({limit:,} of {n:,} shown)"
