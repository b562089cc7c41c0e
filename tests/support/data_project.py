"""A realistic Kedro project written into a directory, as a user's would be: a raw CSV shipped
with it, parquet intermediates, a dataset factory feeding a namespaced modular pipeline, a
versioned pickle loaded back by a later node, a matplotlib figure (which cannot be loaded
back) and an in-memory result. Its numbers depend on the parameters, so a job that read
another job's files would report the wrong ones."""

from __future__ import annotations

from pathlib import Path

from kedro_jobs_local.counting_project import write_kedro_project

PIPELINES = ("__default__", "data_processing", "data_science", "reporting", "failing")

_CATALOG = """
orders:
  type: pandas.CSVDataset
  filepath: data/01_raw/orders.csv

clean_orders:
  type: pandas.ParquetDataset
  filepath: data/02_intermediate/clean_orders.parquet

"{region}.region_summary":
  type: pandas.CSVDataset
  filepath: data/03_primary/{region}_summary.csv

model:
  type: pickle.PickleDataset
  filepath: data/06_models/model.pickle
  versioned: true

chart:
  type: matplotlib.MatplotlibDataset
  filepath: data/08_reporting/chart.png
  versioned: true
"""

_PARAMETERS = """
scale: 1.0
min_amount: 0
model_options:
  factor: 2
  offset: 1
"""

_NODES = """
import time

import pandas as pd


def clean(orders, scale):
    frame = orders.dropna().copy()
    frame["amount"] = frame["amount"] * scale
    return frame


def summarise(clean_orders, min_amount):
    kept = clean_orders[clean_orders["amount"] >= min_amount]
    return kept.groupby("region", as_index=False)["amount"].sum()


def train(clean_orders, model_options):
    # Slow enough that two jobs overlap: the model a later node loads must be this job's.
    time.sleep(0.2)
    total = float(clean_orders["amount"].sum())
    return {"factor": model_options["factor"], "offset": model_options["offset"], "total": total}


def evaluate(model, clean_orders):
    return {
        "score": model["total"] * model["factor"] + model["offset"],
        "rows": int(len(clean_orders)),
        "factor": model["factor"],
    }


def plot(clean_orders):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(2, 2))
    axes.bar(clean_orders["region"], clean_orders["amount"])
    return figure


def boom(clean_orders):
    raise ValueError("the model would not converge")
"""

_REGISTRY = """
from kedro.pipeline import node, pipeline

from {package}.nodes import boom, clean, evaluate, plot, summarise, train


def register_pipelines():
    cleaning = pipeline([node(clean, ["orders", "params:scale"], "clean_orders", name="clean")])
    per_region = pipeline(
        [node(summarise, ["clean_orders", "params:min_amount"], "region_summary",
              name="summarise")]
    )
    regions = sum(
        (pipeline(per_region, namespace=region, inputs={{"clean_orders"}},
                  parameters={{"params:min_amount"}})
         for region in ("north", "south")),
        pipeline([]),
    )
    processing = cleaning + regions
    science = pipeline([
        node(train, ["clean_orders", "params:model_options"], "model", name="train"),
        node(evaluate, ["model", "clean_orders"], "metrics", name="evaluate"),
    ])
    reporting = pipeline([node(plot, "clean_orders", "chart", name="plot")])
    return {{
        "__default__": processing + science + reporting,
        "data_processing": processing,
        "data_science": science,
        "reporting": reporting,
        "failing": cleaning + pipeline([node(boom, "clean_orders", "never", name="boom")]),
    }}
"""

ORDERS = "region,amount\nnorth,10\nsouth,20\nnorth,5\nsouth,\neast,7\n"


def write_data_project(root: Path, package: str = "data_project") -> Path:
    """Write the project under ``root`` (created) and return its path."""
    return write_kedro_project(
        root,
        package,
        _NODES,
        _REGISTRY,
        catalog=_CATALOG,
        parameters=_PARAMETERS,
        files={"data/01_raw/orders.csv": ORDERS},
    )


def expected_score(factor: float, offset: float, scale: float = 1.0) -> float:
    """What `data_science` reports: (sum of the clean amounts) * factor + offset."""
    return (10 + 20 + 5 + 7) * scale * factor + offset
