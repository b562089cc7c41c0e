"""Lambda's disk, simulated for real: the consumer handler runs as `nobody` with the project
folder mounted read-only (a private mount namespace), against the moto server, with the data
root on the moto bucket as the template sets it. A chain of jobs that save parquet, a
versioned pickle and a matplotlib figure completes, and the files are in the bucket."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.resources import LocalResources
from tests.support.data_project import expected_score, write_data_project
from tests.support.lambda_disk import readable_by_all, run_as_lambda

from .conftest import Aws


@pytest.fixture
def readonly_project() -> Iterator[Path]:
    """The project in a folder `nobody` can read (pytest's tmp folders are root's only)."""
    base = Path(tempfile.mkdtemp(prefix="kedro-jobs-ro-"))
    try:
        project = write_data_project(base / "project")
        readable_by_all(base)
        yield project
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_chain_of_jobs_runs_as_nobody_on_a_read_only_project_with_data_on_s3(
    aws: Aws, stack: LocalResources, moto_server: MotoServer, readonly_project: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k.startswith(("AWS_", "POWERTOOLS_"))},
        **stack.function_env("ConsumerFunction"),
        # One worker runs each job here (the project's namespaces would fan out from their
        # first run): this is about Lambda's disk; fan-out has tests of its own.
        "FAN_OUT_STATE_MACHINE_ARN": "",
    }
    assert env["JOBS_DATA_ROOT"] == f"s3://{stack.bucket}/data"
    result = run_as_lambda(
        readonly_project, ["data_processing", "data_science", "__default__"], env, timeout=240
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.split().count('{"batchItemFailures":') == 3, result.stdout
    jobs = {item["pipeline_name"]["S"]: item for item in aws.items() if "pipeline_name" in item}
    assert {name: job["status"]["S"] for name, job in jobs.items()} == {
        "data_processing": "completed", "data_science": "completed", "__default__": "completed"
    }, {name: job.get("error_message") for name, job in jobs.items()}  # fmt: skip
    science = json.loads(jobs["data_science"]["results"]["S"])
    assert science["metrics"]["score"] == expected_score(2, 1)
    keys = {
        obj["Key"]
        for obj in aws.s3.list_objects_v2(Bucket=stack.bucket, Prefix="data/")["Contents"]
    }
    assert "data/data/02_intermediate/clean_orders.parquet" in keys
    assert "data/data/03_primary/north_summary.csv" in keys
    assert sum(k.startswith("data/data/06_models/model.pickle/") for k in keys) == 2
    assert sum(k.startswith("data/data/08_reporting/chart.png/") for k in keys) == 1
    outputs = json.loads(jobs["__default__"]["outputs"]["S"])
    assert {o["name"] for o in outputs} == {
        "clean_orders", "north.region_summary", "south.region_summary", "model", "chart"
    }  # fmt: skip
    for output in outputs:
        assert output["uri"].startswith(f"s3://{stack.bucket}/data/data/")
        key = output["uri"].removeprefix(f"s3://{stack.bucket}/")
        assert aws.s3.head_object(Bucket=stack.bucket, Key=key)["ContentLength"] == output["size"]
    assert sorted(p.name for p in (readonly_project / "data").iterdir()) == ["01_raw"]
