"""Shared by the benchmark scripts: print the JSON report and write it where asked."""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(value: Any) -> Any:
    """NaN and infinity become null, so the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def emit(report: dict[str, Any], out: str | None) -> dict[str, Any]:
    """Print ``report`` as indented JSON and also write it to ``out`` when given."""
    text = json.dumps(_finite(report), indent=2, allow_nan=False, default=float)
    print(text)
    if out:
        with open(out, "w") as handle:
            handle.write(text + "\n")
    return report
