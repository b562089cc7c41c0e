"""reporting: rank regions and write a short markdown report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.pipeline import Pipeline, node, pipeline

from example_pipelines.pipelines.orders import clean_orders, generate_orders


def _slow_step(params: dict[str, Any]) -> None:
    """A deliberately slow step, when asked for: something to cancel or to time out. With a
    ``release_file``, it ends as soon as that file appears (taking it, so that the next run
    waits for its own), at the latest after ``delay_seconds``: a test's cue, not a guess at
    how long a loaded machine needs."""
    delay = float(params.get("delay_seconds", 0))
    release = params.get("release_file")
    if not release:
        time.sleep(delay)
        return
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        try:
            Path(release).unlink()
            return
        except FileNotFoundError:
            time.sleep(0.1)


def rank_regions(clean: pd.DataFrame, params: dict[str, Any]) -> list[dict[str, Any]]:
    _slow_step(params)
    totals = clean.groupby("region")["revenue"].sum().sort_values(ascending=False)
    return [
        {"region": str(region), "revenue": round(float(revenue), 2)}
        for region, revenue in totals.head(params["top_n"]).items()
    ]


def write_report(ranking: list[dict[str, Any]], params: dict[str, Any]) -> str:
    lines = ["# Top regions", ""] + [
        f"{i}. {row['region']}: {row['revenue']:.2f}" for i, row in enumerate(ranking, 1)
    ]
    return "\n".join(lines)


def create_pipeline() -> Pipeline:
    return pipeline(
        [
            node(
                generate_orders, "params:data_loading", "rp_raw_orders",
                name="rp_generate_orders",
            ),
            node(clean_orders, "rp_raw_orders", "rp_clean_orders", name="rp_clean_orders"),
            node(
                rank_regions, ["rp_clean_orders", "params:reporting"], "top_regions",
                name="rank_regions",
            ),
            node(write_report, ["top_regions", "params:reporting"], "report", name="write_report"),
        ],
        tags=["reporting"],
    )  # fmt: skip
