"""Numbers for people and for JSON: one definition of each formatting rule fornet uses.

* Scores are shares in [0, 1] internally; people read them as percentages (:func:`pct`).
* An undefined score is NaN internally (a class absent from ground truth and predictions) and ``null`` in
  JSON, as in the official evaluator's result file (:func:`none_if_nan`, :func:`nan_to_none`).
"""

from __future__ import annotations

import math
from typing import Any


def is_missing(value: Any) -> bool:
    """None or a float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def none_if_nan(value: float | None) -> float | None:
    """JSON-safe number: NaN (and None) -> None, anything else as a float."""
    return None if is_missing(value) else float(value)  # type: ignore[arg-type]


def nan_to_none(data: Any) -> Any:
    """``data`` with every float NaN, in nested dicts, lists and tuples, replaced by None."""
    if isinstance(data, float):
        return None if math.isnan(data) else data
    if isinstance(data, dict):
        return {k: nan_to_none(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [nan_to_none(v) for v in data]
    return data


def pct(value: float | None, digits: int = 1, *, missing: str = "-", suffix: str = "", sign: bool = False) -> str:
    """A share as a percentage: ``pct(0.1234)`` -> ``"12.3"``; ``missing`` for None / NaN.

    ``suffix`` is appended to a number (``"%"``, ``"&nbsp;%"``); ``sign`` writes ``+`` for positive values
    (differences of two shares, in points).
    """
    if is_missing(value):
        return missing
    return f"{100 * value:{'+' if sign else ''}.{digits}f}{suffix}"  # type: ignore[operator]
