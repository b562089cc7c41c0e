"""The consumer's container image, without Docker: assemble its task root as the Dockerfile
does (same files, same pip install), then import and invoke the handler from a clean
interpreter that sees only that directory, against the moto stack."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.resources import LocalResources
from tests.support.events import sqs_event

from .conftest import ROOT

DOCKERFILE = (ROOT / "functions" / "consumer.Dockerfile").read_text()


def _instruction(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", joined, re.MULTILINE)]


def test_dockerfile_is_the_lambda_python_image_with_the_consumer_handler() -> None:
    assert _instruction("FROM") == ["public.ecr.aws/lambda/python:3.11"]
    assert _instruction("CMD") == ['["kedro_jobs.consumer.handler.handler"]']
    assert _instruction("ARG") == ["KEDRO_PROJECT=local/example_project"]


@pytest.fixture(scope="module")
def task_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("image") / "var_task"
    build = root / "build"
    # COPY pyproject.toml README.md ${LAMBDA_TASK_ROOT}/build/
    # COPY functions/kedro_jobs ${LAMBDA_TASK_ROOT}/build/functions/kedro_jobs
    copies = _instruction("COPY")
    assert copies[0] == "pyproject.toml README.md ${LAMBDA_TASK_ROOT}/build/"
    assert copies[1] == "functions/kedro_jobs ${LAMBDA_TASK_ROOT}/build/functions/kedro_jobs"
    assert copies[2] == "${KEDRO_PROJECT} ${LAMBDA_TASK_ROOT}/project"
    (build / "functions").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", build)
    shutil.copy(ROOT / "README.md", build)
    shutil.copytree(
        ROOT / "functions" / "kedro_jobs",
        build / "functions" / "kedro_jobs",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    assert '--target "${LAMBDA_TASK_ROOT}" "${LAMBDA_TASK_ROOT}/build[consumer]"' in DOCKERFILE
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-qq", "--no-cache-dir",
         "--target", str(root), f"{build}[consumer]"],
        check=True, timeout=540,
    )  # fmt: skip
    shutil.rmtree(build)
    shutil.copytree(
        ROOT / "local" / "example_project",
        root / "project",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return root


_INVOKE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import kedro_jobs.consumer.handler as h
assert h.__file__.startswith(sys.argv[1]), h.__file__
import kedro
assert kedro.__file__.startswith(sys.argv[1]), kedro.__file__
from kedro_jobs.consumer.context import LocalContext
print(json.dumps(h.handler(json.loads(sys.argv[2]), LocalContext(60))))
"""


def test_the_image_task_root_runs_a_job(
    task_root: Path, stack: LocalResources, moto_server: MotoServer
) -> None:
    env = {
        # The Dockerfile's ENV, with LAMBDA_TASK_ROOT where the Lambda base image sets it.
        "LAMBDA_TASK_ROOT": str(task_root),
        "KEDRO_PROJECT_PATH": str(task_root / "project"),
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "HOME": "/tmp",
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "POWERTOOLS_TRACE_DISABLED": "true",
        **stack.function_env("ConsumerFunction"),
    }
    body = json.dumps({"version": 1, "pipeline_name": "hello", "idempotency_key": "image-test"})
    event = sqs_event(body, message_ids=["image-1"])
    # -I: no user site, no PYTHONPATH; -S: no site-packages. Only the stdlib and the task root.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _INVOKE, str(task_root), json.dumps(event)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"batchItemFailures": []}
    ddb = boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url)
    items = ddb.query(
        TableName=stack.table_name,
        IndexName="by_user_pipeline",
        KeyConditionExpression="user_pipeline = :p",
        ExpressionAttributeValues={":p": {"S": "anonymous#hello"}},
    )["Items"]
    assert [i["status"]["S"] for i in items] == ["completed"]
    job = ddb.get_item(TableName=stack.table_name, Key={"id": items[0]["id"]})["Item"]
    assert json.loads(job["results"]["S"]) == {"doubled": 42}
    assert os.path.isdir(task_root / "project" / "conf")
