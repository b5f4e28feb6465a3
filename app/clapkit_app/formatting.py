"""How the dashboards write numbers that are not plain numbers: intervals."""

from __future__ import annotations

__all__ = ["interval_text"]


def interval_text(found: tuple[float, float] | None, fmt: str, differs: bool | None) -> str:
    """An interval as the table shows it, in the metric's number format (``"0.000"``:
    three decimals); ``*`` marks a row that differs from its reference (the real images
    on the translation page, the photometry on the stellar-mass page).

    Examples
    --------
    >>> interval_text((0.0123, 0.0187), "0.0000", True), interval_text(None, "0.00", None)
    ('0.0123–0.0187 *', '—')
    """
    if found is None:
        return "—"
    decimals = len(fmt.partition(".")[2])
    text = f"{found[0]:.{decimals}f}–{found[1]:.{decimals}f}"
    return f"{text} *" if differs else text
