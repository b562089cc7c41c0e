"""Orders generated from parameters, cleaned: the start of every example pipeline."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


def generate_orders(params: dict[str, Any]) -> pd.DataFrame:
    n_rows = params["n_rows"]
    if not isinstance(n_rows, int) or n_rows < 1:
        raise ValueError(f"data_loading.n_rows must be a positive integer, got {n_rows!r}")
    rng = np.random.default_rng(params["seed"])
    regions = list(params["regions"])
    orders = pd.DataFrame(
        {
            "order_id": np.arange(1, n_rows + 1),
            "region": rng.choice(regions, size=n_rows),
            "quantity": rng.integers(1, 10, size=n_rows),
            "unit_price": rng.gamma(2.0, 15.0, size=n_rows).round(2),
            "day": pd.Timestamp("2026-01-01")
            + pd.to_timedelta(rng.integers(0, 90, size=n_rows), unit="D"),
        }
    )
    missing = rng.random(n_rows) < params["missing_rate"]
    orders.loc[missing, "unit_price"] = np.nan
    logger.info("generated %d orders in %d regions", n_rows, len(regions))
    return orders


def clean_orders(orders: pd.DataFrame) -> pd.DataFrame:
    clean = orders.dropna(subset=["unit_price"]).copy()
    clean["revenue"] = (clean["quantity"] * clean["unit_price"]).round(2)
    logger.info("kept %d of %d orders", len(clean), len(orders))
    return clean
