"""data_loading: generate orders, clean them, summarise them."""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.pipeline import Pipeline, node, pipeline

from example_pipelines.pipelines.orders import clean_orders, generate_orders


def summarise_orders(raw: pd.DataFrame, clean: pd.DataFrame) -> dict[str, Any]:
    by_region = clean.groupby("region")["revenue"].sum().round(2)
    return {
        "rows_generated": len(raw),
        "rows_kept": len(clean),
        "rows_dropped": len(raw) - len(clean),
        "total_revenue": round(float(clean["revenue"].sum()), 2),
        "revenue_by_region": {str(k): float(v) for k, v in by_region.items()},
        "first_day": str(clean["day"].min().date()) if len(clean) else None,
        "last_day": str(clean["day"].max().date()) if len(clean) else None,
    }


def create_pipeline() -> Pipeline:
    return pipeline(
        [
            node(generate_orders, "params:data_loading", "raw_orders", name="generate_orders"),
            node(clean_orders, "raw_orders", "clean_orders", name="clean_orders"),
            node(
                summarise_orders,
                ["raw_orders", "clean_orders"],
                "orders_summary",
                name="summarise_orders",
            ),
        ],
        tags=["data_loading"],
    )
