"""What a job record can carry from a run's free outputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from kedro_jobs.runner.results import to_json_safe


def test_plain_values_pass_through() -> None:
    value = {"a": 1, "b": [1.5, "x", None, True], "c": {"d": (1, 2)}}
    assert to_json_safe(value) == {"a": 1, "b": [1.5, "x", None, True], "c": {"d": [1, 2]}}


def test_non_finite_numpy_and_dates_become_json() -> None:
    out = to_json_safe(
        {"nan": float("nan"), "inf": float("inf"), "np": np.int64(3), "arr": np.arange(3),
         "when": datetime(2026, 1, 2, tzinfo=UTC)}
    )  # fmt: skip
    assert out == {
        "nan": None,
        "inf": None,
        "np": 3,
        "arr": [0, 1, 2],
        "when": "2026-01-02T00:00:00+00:00",
    }
    json.dumps(out, allow_nan=False)


def test_a_dataframe_becomes_a_summary() -> None:
    frame = pd.DataFrame({"x": range(10), "y": ["a"] * 10})
    out = to_json_safe({"frame": frame, "series": frame["x"]})
    assert out["frame"]["type"] == "DataFrame"
    assert out["frame"]["shape"] == [10, 2]
    assert out["frame"]["columns"] == ["x", "y"]
    assert len(out["frame"]["head"]) == 5
    assert out["series"]["type"] == "Series" and out["series"]["length"] == 10
    json.dumps(out, allow_nan=False)


def test_anything_else_is_named_not_lost() -> None:
    class Model:
        def __repr__(self) -> str:
            return "Model(fitted)"

    out = to_json_safe({"model": Model()})
    assert out["model"]["repr"] == "Model(fitted)"
    assert out["model"]["type"].endswith("Model")


def test_pandas_missing_values_and_durations() -> None:
    out = to_json_safe(
        {"nat": pd.NaT, "na": pd.NA, "td": pd.Timedelta("1D"), "ts": pd.Timestamp("2026-01-01")}
    )
    assert out == {"nat": None, "na": None, "td": 86400.0, "ts": "2026-01-01T00:00:00"}
