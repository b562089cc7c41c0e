"""A real modular project fanned out (tests/support/modular_project.py: a shared CSV input,
four namespaced model pipelines, parquet, pickle and JSON files), through the consumer's
Lambda handler and moto's Step Functions: it completes, and every file it commits to the data
root is byte for byte the file a one-worker run of the same request commits."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from kedro_jobs.core.fanout import transitions
from kedro_jobs.core.models import Job
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs
from tests.support.modular_project import REGIONS, write_modular_project

from .conftest import Aws, Invoke, drain

DATA = "data/data/"  # the project's data/ folder on the data root (the stack's bucket)


@pytest.fixture(scope="module")
def modular_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_modular_project(tmp_path_factory.mktemp("modular") / "p", rows=4_000, bootstrap=3)


@pytest.fixture
def modular_invoke(
    invoke: Invoke,
    modular_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_functions: Callable[[], None],
) -> Invoke:
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(modular_project))
    monkeypatch.setenv("FAN_OUT_MIN_GROUP_SECONDS", "0")
    fresh_functions()
    return invoke


def run(invoke: Invoke, aws: Aws, store: ApiJobs, **options: Any) -> Job:
    """Submit ``models`` and deliver every message (one invocation each, as separate workers
    would take them) until the job ends."""
    job = store.create(Job.new(pipeline_name="models", parameters={}, options=options, user_id="u"))
    assert invoke(job.to_message().model_dump_json(exclude_none=True)) == {"batchItemFailures": []}
    return drain(invoke, aws, store, job.id, rounds=120, timeout=120.0)


def committed(aws: Aws) -> dict[str, bytes]:
    """Every file under the data root's project paths, by key; then removed, for the next run."""
    found: dict[str, bytes] = {}
    listing = aws.s3.get_paginator("list_objects_v2")
    for page in listing.paginate(Bucket=aws.resources.bucket, Prefix=DATA):
        for item in page.get("Contents", []):
            body = aws.s3.get_object(Bucket=aws.resources.bucket, Key=item["Key"])["Body"]
            found[item["Key"][len(DATA) :]] = body.read()
    for key in found:
        aws.s3.delete_object(Bucket=aws.resources.bucket, Key=DATA + key)
    return found


def test_the_modular_project_fanned_out_commits_the_files_of_a_one_worker_run(
    modular_invoke: Invoke, aws: Aws, store: ApiJobs
) -> None:
    fanned = run(modular_invoke, aws, store)
    assert fanned.status is JobStatus.COMPLETED, fanned.error_message
    assert fanned.fan_out is not None and fanned.groups is not None
    # Kedro's own groups: the un-namespaced clean, the four regions at once, then compare.
    names = {g["id"]: g["name"] for g in fanned.fan_out["groups"]}
    levels = [sorted(names[g] for g in level) for level in fanned.fan_out["levels"]]
    assert levels == [["clean"], sorted(REGIONS), ["compare"]]
    assert {g.status for g in fanned.groups.values()} == {"completed"}
    # What the execution is billed (docs/fan-out.md): the states its history shows entered.
    sfn = boto3.client("stepfunctions", endpoint_url=aws.sqs.meta.endpoint_url)
    machine = aws.resources.function_env()["FAN_OUT_STATE_MACHINE_ARN"]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{fanned.id}"
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [e for e in history if e["type"].endswith("StateEntered")]
    assert len(entered) == transitions(fanned.fan_out) == 1 + 3 + 6 + 1
    fanned_files = committed(aws)

    alone = run(modular_invoke, aws, store, fan_out=False)
    assert alone.status is JobStatus.COMPLETED, alone.error_message
    assert alone.groups is None
    alone_files = committed(aws)

    expected = {
        "02_intermediate/clean_observations.parquet",
        "08_reporting/model_comparison.json",
        *(f"04_feature/{r}/features.parquet" for r in REGIONS),
        *(f"06_models/{r}/model.pkl" for r in REGIONS),
        *(f"08_reporting/{r}/metrics.json" for r in REGIONS),
    }
    assert set(fanned_files) == set(alone_files) == expected
    different = [key for key in expected if fanned_files[key] != alone_files[key]]
    assert not different, f"not the one-worker run's bytes: {different}"
    assert fanned.results == alone.results
    assert sorted(o.name for o in fanned.outputs or []) == sorted(
        o.name for o in alone.outputs or []
    )
    # Real models: each region's fit explains its data (the regions differ, by design).
    for region in REGIONS:
        metrics = json.loads(fanned_files[f"08_reporting/{region}/metrics.json"])
        assert metrics["region"] == region and metrics["r2"] > 0.5, metrics
        model = pickle.loads(fanned_files[f"06_models/{region}/model.pkl"])
        assert len(model["coef"]) == len(model["columns"]) == 1 + 8 + 36
    ranking = json.loads(fanned_files["08_reporting/model_comparison.json"])
    assert sorted(ranking["by_rmse"]) == sorted(REGIONS)
