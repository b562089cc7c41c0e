"""A modular Kedro project, as real ones are laid out: one shared input and one model
pipeline per region, each a namespace (``north``, ``south``, ``east``, ``west``).

``models`` (also ``__default__``): ``clean`` (no namespace) reads the raw CSV
``observations`` and writes ``clean_observations`` (parquet); then, per region namespace,
``select`` its rows, ``featurize`` (squares and pairwise interactions, parquet),
``train`` a ridge regression chosen by k-fold cross-validation over ``alphas``, repeated on
``bootstrap`` resamples (the real work: numpy solves, seconds with the defaults), saved as a
pickle, and ``evaluate`` it into a metrics JSON; last, ``compare`` (no namespace) ranks the
regions' metrics into one JSON. Each region reads its own ``params:<region>.region`` and the
shared ``params:model_options``, as namespaced pipelines do. Every dataset is a real file.

Fanned out it is 6 groups in 3 levels: ``clean``, the 4 regions at once, ``compare``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kedro_jobs_local.counting_project import write_pyproject

REGIONS = ("north", "south", "east", "west")
FEATURES = 8

_NODES = '''
import numpy as np
import pandas as pd


def clean(observations):
    """Rows with a target, features standardised over the whole input."""
    table = observations.dropna().reset_index(drop=True)
    columns = [c for c in table.columns if c.startswith("x")]
    table[columns] = (table[columns] - table[columns].mean()) / table[columns].std()
    return table


def select(clean_observations, region):
    return clean_observations[clean_observations["region"] == region].reset_index(drop=True)


def featurize(rows):
    """Squares and pairwise interactions of the features, beside them."""
    columns = [c for c in rows.columns if c.startswith("x")]
    out = {"y": rows["y"].to_numpy()}
    for i, a in enumerate(columns):
        out[a] = rows[a].to_numpy()
        for b in columns[i:]:
            out[a + "_" + b] = rows[a].to_numpy() * rows[b].to_numpy()
    return pd.DataFrame(out)


def _ridge(x, y, alpha):
    return np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y)


def train(features, options):
    """Ridge regression: the alpha with the lowest k-fold error, refit on ``bootstrap``
    resamples; the model is the mean of their coefficients."""
    x = features.drop(columns=["y"]).to_numpy()
    x = np.hstack([np.ones((len(x), 1)), x])
    y = features["y"].to_numpy()
    rng = np.random.default_rng(options["seed"])
    folds = np.array_split(rng.permutation(len(x)), options["folds"])
    errors = {}
    for alpha in options["alphas"]:
        total = 0.0
        for fold in folds:
            keep = np.ones(len(x), dtype=bool)
            keep[fold] = False
            coef = _ridge(x[keep], y[keep], alpha)
            total += float(np.mean((x[fold] @ coef - y[fold]) ** 2))
        errors[alpha] = total / len(folds)
    best = min(errors, key=errors.get)
    coefs = []
    for _ in range(options["bootstrap"]):
        sample = rng.integers(0, len(x), len(x))
        coefs.append(_ridge(x[sample], y[sample], best))
    return {"alpha": best, "coef": np.mean(coefs, axis=0), "columns": ["1", *features.columns[1:]],
            "cv_mse": errors}


def evaluate(model, features, region):
    x = np.hstack([np.ones((len(features), 1)), features.drop(columns=["y"]).to_numpy()])
    y = features["y"].to_numpy()
    residual = y - x @ model["coef"]
    return {
        "region": region,
        "rows": int(len(y)),
        "alpha": float(model["alpha"]),
        "rmse": round(float(np.sqrt(np.mean(residual ** 2))), 10),
        "r2": round(float(1 - residual.var() / y.var()), 10),
    }


def compare(*metrics):
    ranked = sorted(metrics, key=lambda m: m["rmse"])
    return {"best": ranked[0]["region"], "by_rmse": [m["region"] for m in ranked]}
'''

_REGISTRY = """
from kedro.pipeline import node, pipeline

from {package}.nodes import clean, compare, evaluate, featurize, select, train

REGIONS = {regions!r}


def _region(name):
    template = pipeline([
        node(select, ["clean_observations", "params:region"], "rows", name="select"),
        node(featurize, "rows", "features", name="featurize"),
        node(train, ["features", "params:model_options"], "model", name="train"),
        node(evaluate, ["model", "features", "params:region"], "metrics", name="evaluate"),
    ])
    return pipeline(template, namespace=name, inputs={{"clean_observations"}},
                    parameters={{"params:model_options"}})


def register_pipelines():
    models = (
        pipeline([node(clean, "observations", "clean_observations", name="clean")])
        + sum((_region(r) for r in REGIONS), pipeline([]))
        + pipeline([node(compare, [r + ".metrics" for r in REGIONS], "model_comparison",
                         name="compare")])
    )
    return {{"__default__": models, "models": models}}
"""


def _catalog() -> str:
    entries = [
        "observations:\n  type: pandas.CSVDataset\n  filepath: data/01_raw/observations.csv\n",
        "clean_observations:\n  type: pandas.ParquetDataset\n"
        "  filepath: data/02_intermediate/clean_observations.parquet\n",
        "model_comparison:\n  type: json.JSONDataset\n"
        "  filepath: data/08_reporting/model_comparison.json\n",
    ]
    for region in REGIONS:
        entries += [
            f"{region}.features:\n  type: pandas.ParquetDataset\n"
            f"  filepath: data/04_feature/{region}/features.parquet\n",
            f"{region}.model:\n  type: pickle.PickleDataset\n"
            f"  filepath: data/06_models/{region}/model.pkl\n",
            f"{region}.metrics:\n  type: json.JSONDataset\n"
            f"  filepath: data/08_reporting/{region}/metrics.json\n",
        ]
    return "\n".join(entries)


def _parameters(bootstrap: int) -> str:
    lines = [
        "model_options:",
        "  alphas: [0.01, 0.1, 1.0, 10.0, 100.0]",
        "  folds: 5",
        f"  bootstrap: {bootstrap}",
        "  seed: 7",
    ]
    for region in REGIONS:
        lines += [f"{region}:", f"  region: {region}"]
    return "\n".join(lines) + "\n"


def observations(rows: int, seed: int = 11) -> pd.DataFrame:
    """The shared input: ``rows`` observations over the regions, each region with its own
    relation of the target to the features (and some missing targets to clean out)."""
    rng = np.random.default_rng(seed)
    region = rng.choice(REGIONS, rows)
    x = rng.normal(size=(rows, FEATURES))
    weights = {r: rng.normal(size=FEATURES) for r in REGIONS}
    w = np.stack([weights[r] for r in region])
    y = (x * w).sum(axis=1) + 0.3 * x[:, 0] * x[:, 1] + rng.normal(scale=0.5, size=rows)
    table = pd.DataFrame(x, columns=[f"x{i}" for i in range(1, FEATURES + 1)])
    table.insert(0, "region", region)
    table["y"] = np.where(rng.random(rows) < 0.01, np.nan, y)
    return table


def write_modular_project(
    root: Path, *, rows: int = 8_000, bootstrap: int = 4, package: str = "modular_models"
) -> Path:
    """Write the project under ``root`` (created), its raw CSV of ``rows`` observations, and
    return its path. ``rows`` and ``bootstrap`` set each region's training work (25 ridge
    solves of the cross-validation, then one a resample)."""
    src = root / "src" / package
    src.mkdir(parents=True)
    for folder in ("conf/base", "conf/local", "data/01_raw"):
        (root / folder).mkdir(parents=True)
    write_pyproject(root, package)
    (root / "conf" / "base" / "catalog.yml").write_text(_catalog())
    (root / "conf" / "base" / "parameters.yml").write_text(_parameters(bootstrap))
    (src / "__init__.py").write_text("")
    (src / "settings.py").write_text("")
    (src / "nodes.py").write_text(_NODES)
    (src / "pipeline_registry.py").write_text(_REGISTRY.format(package=package, regions=REGIONS))
    observations(rows).to_csv(root / "data" / "01_raw" / "observations.csv", index=False)
    return root
