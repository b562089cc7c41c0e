"""feature_engineering: per-order features and their statistics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from kedro.pipeline import Pipeline, node, pipeline

from example_pipelines.pipelines.orders import clean_orders, generate_orders


def add_features(clean: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    features = clean[["order_id", "region", "quantity", "unit_price", "revenue"]].copy()
    features["weekday"] = clean["day"].dt.day_name()
    features["high_value"] = features["revenue"] >= params["high_value_threshold"]
    features["revenue_share_in_region"] = (
        features["revenue"] / features.groupby("region")["revenue"].transform("sum")
    ).round(4)
    return features


def feature_statistics(features: pd.DataFrame) -> dict[str, Any]:
    return {
        "rows": len(features),
        "high_value_orders": int(features["high_value"].sum()),
        "mean_revenue": round(float(features["revenue"].mean()), 2),
        "orders_by_weekday": {
            str(k): int(v) for k, v in features["weekday"].value_counts().items()
        },
    }


def region_features(features: pd.DataFrame) -> pd.DataFrame:
    """One row per region: a small table that is the pipeline's second result."""
    table = features.groupby("region").agg(
        orders=("order_id", "count"),
        revenue=("revenue", "sum"),
        high_value_share=("high_value", "mean"),
    )
    return table.round(3).reset_index().sort_values("revenue", ascending=False)


def fit_revenue_model(features: pd.DataFrame) -> dict[str, float]:
    """A least-squares line of revenue against quantity: the pipeline's "model" (a file)."""
    slope, intercept = np.polyfit(features["quantity"], features["revenue"], 1)
    return {"slope": round(float(slope), 4), "intercept": round(float(intercept), 4)}


def create_pipeline() -> Pipeline:
    return pipeline(
        [
            node(
                generate_orders, "params:data_loading", "fe_raw_orders",
                name="fe_generate_orders",
            ),
            node(clean_orders, "fe_raw_orders", "fe_clean_orders", name="fe_clean_orders"),
            node(
                add_features, ["fe_clean_orders", "params:features"], "order_features",
                name="add_features",
            ),
            node(feature_statistics, "order_features", "feature_stats", name="feature_statistics"),
            node(region_features, "order_features", "region_features", name="region_features"),
            node(fit_revenue_model, "order_features", "revenue_model", name="fit_revenue_model"),
        ],
        tags=["features"],
    )  # fmt: skip
