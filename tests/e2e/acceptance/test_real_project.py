"""A real project through the whole service: every pipeline completes (with one and with two
consumers), concurrent jobs with two parameter sets each report their own results, and a
read-only project with its data on S3 runs its chain as Lambda would."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from kedro_jobs_local.dev_stack import running_local_stack
from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.resources import create_resources
from tests.support.lambda_disk import run_as_lambda

from ..conftest import TERMINAL


def _wait(client: httpx.Client, job_ids: list[str], timeout: float = 900) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    jobs: dict[str, dict[str, Any]] = {}
    while len(jobs) < len(job_ids):
        assert time.monotonic() < deadline, f"not finished: {set(job_ids) - set(jobs)}"
        for job_id in job_ids:
            if job_id not in jobs:
                job = client.get(f"/api/v1/jobs/{job_id}").json()
                if job["status"] in TERMINAL:
                    jobs[job_id] = job
        time.sleep(0.5)
    return [jobs[j] for j in job_ids]


def _submit(client: httpx.Client, pipeline: str, params: dict[str, Any] | None = None) -> str:
    response = client.post(
        "/api/v1/jobs", json={"pipeline_name": pipeline, "parameters": params or {}}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def _run(
    client: httpx.Client, pipeline: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    (job,) = _wait(client, [_submit(client, pipeline, params)])
    assert job["status"] == "completed", (pipeline, job["error_message"])
    return job


@pytest.mark.parametrize("workers", [1, 2])
def test_every_pipeline_completes(project_copy: Path, tmp_path: Path, workers: int) -> None:
    env = {"KEDRO_PROJECT_PATH": str(project_copy), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    with running_local_stack(tmp_path / "dev.log", workers=workers, env=env) as stack:
        client = stack.client()
        names = [p["name"] for p in client.get("/api/v1/pipelines").json()["pipelines"]]
        assert "__default__" in names
        # The default first: what the others read, it has committed.
        for name in ["__default__", *sorted(set(names) - {"__default__"})]:
            job = _run(client, name)
            assert job["outputs"] or job["results"] is not None, name
            for output in job["outputs"] or []:
                assert Path(output["uri"]).exists(), output


def test_concurrent_jobs_with_two_parameter_sets_report_their_own_results(
    project_copy: Path, tmp_path: Path, pair: dict[str, Any]
) -> None:
    env = {"KEDRO_PROJECT_PATH": str(project_copy), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    with running_local_stack(tmp_path / "dev.log", workers=2, env=env) as stack:
        client = stack.client()
        for before in pair.get("after", []):
            _run(client, before)
        alone = [_run(client, pair["pipeline"], params)["results"] for params in pair["params"]]
        assert alone[0] != alone[1], "the two parameter sets must give different results"
        sets = pair["params"] * 5
        jobs = _wait(client, [_submit(client, pair["pipeline"], params) for params in sets])
        failed = [j["error_message"] for j in jobs if j["status"] != "completed"]
        wrong = [
            (params, job["results"])
            for params, job in zip(sets, jobs, strict=True)
            if job["results"] != alone[pair["params"].index(params)]
        ]
        assert (failed, wrong) == ([], [])


def test_a_read_only_project_runs_its_chain_with_data_on_s3(
    project_copy: Path, moto_server: MotoServer
) -> None:
    """As on Lambda: the image's project folder read-only, the function as a non-root user,
    the data root on the bucket."""
    endpoint = moto_server.endpoint_url
    resources = create_resources(endpoint_url=endpoint)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "POWERTOOLS_TRACE_DISABLED": "true",
        **resources.function_env("ConsumerFunction"),
    }
    chain = os.environ.get(
        "KEDRO_JOBS_ACCEPTANCE_CHAIN", "data_processing,data_science,__default__"
    ).split(",")
    result = run_as_lambda(project_copy, chain, env, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    table = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    items = table.scan(TableName=resources.table_name)["Items"]  # a test may Scan
    assert sorted(
        (i["pipeline_name"]["S"], i["status"]["S"], i.get("error_message", {}).get("S"))
        for i in items
    ) == sorted((name, "completed", None) for name in chain)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=resources.bucket, Prefix="data/")["Contents"]
    ]
    assert keys, "nothing was committed to the bucket"
