"""The run's free outputs as JSON-safe values: what a job record can carry."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

_MAX_DEPTH = 20
_HEAD_ROWS = 5
_REPR_CHARS = 500
_MISSING = frozenset({"NaTType", "NAType"})


def _type_name(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _frame_summary(frame: Any) -> dict[str, Any]:
    head = frame.head(_HEAD_ROWS)
    return {
        "type": "DataFrame",
        "shape": [int(frame.shape[0]), int(frame.shape[1])],
        "columns": [str(c) for c in frame.columns],
        "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()},
        "head": to_json_safe(head.to_dict(orient="records")),
    }


def _series_summary(series: Any) -> dict[str, Any]:
    return {
        "type": "Series",
        "name": None if series.name is None else str(series.name),
        "length": len(series),
        "dtype": str(series.dtype),
        "head": to_json_safe(series.head(_HEAD_ROWS).tolist()),
    }


def to_json_safe(value: Any, depth: int = 0) -> Any:
    """Numbers, strings, booleans, None, lists and string-keyed dicts pass through; NaN and
    infinities become None; numpy values become Python ones; a pandas DataFrame or Series
    becomes a summary; anything else becomes its type and a short repr."""
    if depth > _MAX_DEPTH:
        return {"type": _type_name(value), "repr": "(nested too deep)"}
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return to_json_safe(float(value))
    if type(value).__name__ in _MISSING:  # pandas' NaT (a datetime) and NA: missing values
        return None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):  # and pandas' Timedelta
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): to_json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json_safe(v, depth + 1) for v in value]
    module = type(value).__module__.split(".")[0]
    if module == "pandas":
        name = type(value).__name__
        if name == "DataFrame":
            return _frame_summary(value)
        if name == "Series":
            return _series_summary(value)
        if name == "Timestamp":
            return value.isoformat()
    if module == "numpy" and hasattr(value, "tolist"):  # arrays and numpy scalars
        return to_json_safe(value.tolist(), depth + 1)
    return {"type": _type_name(value), "repr": repr(value)[:_REPR_CHARS]}
