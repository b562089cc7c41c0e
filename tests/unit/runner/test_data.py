"""A job's data on a realistic project: every pipeline completes (a figure that cannot be
loaded back included), saved datasets are listed as outputs and committed only on success,
versioned datasets get the job's own version, later jobs read what earlier ones committed,
and jobs with different parameters never see each other's files."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kedro_jobs.runner.runner import KedroRunner
from tests.support.data_project import PIPELINES, expected_score

from .conftest import run

BOTH = pytest.mark.parametrize("data_isolated", ["inline", "fork"], indirect=True)


def _root(runner: KedroRunner) -> Path:
    return Path(runner.data_root)


def _staging_left(runner: KedroRunner) -> list[Path]:
    return list(runner.staging_root.glob("*")) if runner.staging_root.exists() else []


@BOTH
def test_the_default_pipeline_completes_and_lists_what_it_saved(
    data_isolated: KedroRunner,
) -> None:
    outcome = run(data_isolated, "__default__")
    assert outcome.status == "completed", outcome.error_message
    # Results are the in-memory outputs only; nothing saved is loaded back.
    assert outcome.results == {"metrics": {"score": 85.0, "rows": 4, "factor": 2}}
    outputs = {o["name"]: o for o in outcome.outputs}
    assert set(outputs) == {
        "clean_orders", "north.region_summary", "south.region_summary", "model", "chart"
    }  # fmt: skip
    root = _root(data_isolated)
    assert outputs["clean_orders"]["uri"] == str(root / "data/02_intermediate/clean_orders.parquet")
    assert outputs["clean_orders"]["type"].endswith("ParquetDataset")
    assert outputs["north.region_summary"]["uri"] == str(root / "data/03_primary/north_summary.csv")
    chart = outputs["chart"]
    assert chart["type"].endswith("MatplotlibDataset") and chart["version"]
    assert chart["uri"] == str(root / f"data/08_reporting/chart.png/{chart['version']}/chart.png")
    assert Path(chart["uri"]).read_bytes().startswith(b"\x89PNG")
    for output in outputs.values():
        assert (
            Path(output["uri"]).is_file() and output["size"] == Path(output["uri"]).stat().st_size
        )
    assert _staging_left(data_isolated) == []
    # The project folder keeps only what it shipped.
    project = data_isolated.project_path
    assert sorted(p.name for p in (project / "data").iterdir()) == ["01_raw"]


@BOTH
def test_a_later_job_reads_what_an_earlier_one_committed(data_isolated: KedroRunner) -> None:
    assert run(data_isolated, "data_processing", {"scale": 2.0}).status == "completed"
    outcome = run(data_isolated, "data_science")
    assert outcome.status == "completed", outcome.error_message
    assert outcome.results == {"metrics": {"score": expected_score(2, 1, scale=2.0),
                                           "rows": 4, "factor": 2}}  # fmt: skip


def test_a_pipeline_that_reads_nothing_committed_says_which_file_is_missing(
    data_isolated: KedroRunner,
) -> None:
    outcome = run(data_isolated, "data_science")
    assert outcome.status == "failed"
    assert "clean_orders.parquet" in (outcome.error_message or "")
    # Its first input is missing: no node ran, so none is blamed (issue 19).
    assert outcome.progress.current is None and outcome.progress.total == 2
    assert "(node:" not in (outcome.error_message or "")


@BOTH
def test_a_failed_job_commits_nothing_and_leaves_no_staging(data_isolated: KedroRunner) -> None:
    outcome = run(data_isolated, "failing")
    assert outcome.status == "failed"
    assert outcome.error_message == "ValueError: the model would not converge (node: boom)"
    assert outcome.outputs == []
    assert not (_root(data_isolated) / "data/02_intermediate").exists()  # saved, not committed
    assert _staging_left(data_isolated) == []
    assert (outcome.progress.completed, outcome.progress.total) == (1, 2)


@BOTH
def test_versioned_outputs_get_the_jobs_own_version(data_isolated: KedroRunner) -> None:
    assert run(data_isolated, "data_processing").status == "completed"
    first = run(data_isolated, "data_science", {"model_options": {"factor": 3, "offset": 0}})
    second = run(data_isolated, "data_science", {"model_options": {"factor": 5, "offset": 0}})
    versions = [
        next(o["version"] for o in outcome.outputs if o["name"] == "model")
        for outcome in (first, second)
    ]
    assert versions[0] != versions[1] and all(versions)
    assert first.results and first.results["metrics"]["score"] == expected_score(3, 0)
    assert second.results and second.results["metrics"]["score"] == expected_score(5, 0)
    kept = sorted(p.name for p in (_root(data_isolated) / "data/06_models/model.pickle").iterdir())
    assert kept == sorted(versions)


def test_dotted_parameter_keys_nest_like_kedro_run_params(data_isolated: KedroRunner) -> None:
    assert run(data_isolated, "data_processing").status == "completed"
    outcome = run(data_isolated, "data_science", {"model_options.factor": 4})
    assert outcome.results == {"metrics": {"score": expected_score(4, 1), "rows": 4,
                                           "factor": 4}}  # fmt: skip


def test_concurrent_jobs_with_different_parameters_each_get_their_own_result(
    data_isolated: KedroRunner,
) -> None:
    """Forked jobs from one warm runner, two parameter sets at once, as two consumers would:
    each result equals the same request run alone."""
    assert run(data_isolated, "data_processing").status == "completed"
    options = [{"model_options": {"factor": f, "offset": f}} for f in (2, 7)] * 5
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda p: run(data_isolated, "data_science", p), options))
    wrong = [
        (params, outcome.status, outcome.error_message, outcome.results)
        for params, outcome in zip(options, outcomes, strict=True)
        if outcome.results
        != {"metrics": {"score": expected_score(params["model_options"]["factor"],
                                                params["model_options"]["factor"]),
                        "rows": 4, "factor": params["model_options"]["factor"]}}
    ]  # fmt: skip
    assert wrong == []
    assert _staging_left(data_isolated) == []


def test_outputs_are_plain_json(data_isolated: KedroRunner) -> None:
    outcome = run(data_isolated, "__default__")
    json.dumps(outcome.outputs, allow_nan=False)
    assert {PIPELINES[0]} <= set(data_isolated.pipeline_names)
