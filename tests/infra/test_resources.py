"""The template's resources created on a real moto server by the code that `make dev`, the
tests and the LocalStack init script share."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import boto3
import pytest

from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.resources import create_resources, load_template

from .conftest import ROOT


def test_resources_match_the_template(moto_server: MotoServer) -> None:
    url = moto_server.endpoint_url
    res = create_resources(endpoint_url=url, stack_name="infra-a")
    again = create_resources(endpoint_url=url, stack_name="infra-a")  # idempotent
    assert again.queue_url == res.queue_url and again.table_name == res.table_name
    assert res.table_name == "infra-a-jobs" and res.bucket.startswith("infra-a-artifacts-")

    ddb = boto3.client("dynamodb", endpoint_url=url)
    table = ddb.describe_table(TableName=res.table_name)["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        "by_user", "by_user_status", "by_user_pipeline",
    }  # fmt: skip
    ttl = ddb.describe_time_to_live(TableName=res.table_name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"

    sqs = boto3.client("sqs", endpoint_url=url)
    attrs = sqs.get_queue_attributes(QueueUrl=res.queue_url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=res.dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_arn and int(redrive["maxReceiveCount"]) == 5
    assert attrs["VisibilityTimeout"] == "5400"  # 6 x the default ConsumerTimeout of 900
    boto3.client("s3", endpoint_url=url).head_bucket(Bucket=res.bucket)


def test_parameter_overrides_are_checked(moto_server: MotoServer) -> None:
    url = moto_server.endpoint_url
    res = create_resources(
        endpoint_url=url, stack_name="infra-b", parameter_overrides={"ConsumerTimeout": "60"}
    )
    sqs = boto3.client("sqs", endpoint_url=url)
    attrs = sqs.get_queue_attributes(QueueUrl=res.queue_url, AttributeNames=["VisibilityTimeout"])
    assert attrs["Attributes"]["VisibilityTimeout"] == "360"
    with pytest.raises(ValueError, match="not one of"):
        create_resources(endpoint_url=url, parameter_overrides={"ConsumerTimeout": "7"})
    with pytest.raises(ValueError, match="unknown template parameters"):
        create_resources(endpoint_url=url, parameter_overrides={"Nope": "1"})


def test_function_env_resolves_every_template_variable(moto_server: MotoServer) -> None:
    res = create_resources(endpoint_url=moto_server.endpoint_url, stack_name="infra-a")
    template = load_template()
    globals_ = template["Globals"]["Function"]["Environment"]["Variables"]
    for function in ("ApiFunction", "ConsumerFunction", "DeadLetterFunction"):
        env = res.function_env(function)
        own = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        # AWS_ENDPOINT_URL is declared only when the AwsEndpointUrl parameter is set.
        assert set(env) == (set(globals_) | set(own)) - {"AWS_ENDPOINT_URL"}
        assert all(isinstance(v, str) and "{" not in v for v in env.values())
        assert env["JOBS_QUEUE_URL"] == res.queue_url
        assert env["ARTIFACTS_BUCKET"] == res.bucket


def test_sam_local_env_file_matches_the_template(moto_server: MotoServer) -> None:
    env_file: dict[str, dict[str, Any]] = json.loads((ROOT / "infra/sam/env.json").read_text())
    res = create_resources(endpoint_url=moto_server.endpoint_url)
    assert set(env_file) == {"ApiFunction", "ConsumerFunction", "DeadLetterFunction"}
    for function, variables in env_file.items():
        declared = set(res.function_env(function)) | {"AWS_ENDPOINT_URL"}
        assert set(variables) <= declared, f"{function}: sam local ignores undeclared variables"
        assert variables["JOBS_TABLE_NAME"] == res.table_name
        assert variables["ARTIFACTS_BUCKET"] == res.bucket
        assert variables["JOBS_QUEUE_URL"].endswith("/kedro-jobs-queue")
        assert variables["AWS_ENDPOINT_URL"].endswith(":4566")


def test_localstack_init_script_creates_the_resources(moto_server: MotoServer) -> None:
    script = ROOT / "infra/localstack/init/ready.d/01-create-resources.sh"
    env = {
        **os.environ,
        "KEDRO_JOBS_ROOT": str(ROOT),
        "KEDRO_JOBS_PYTHON": os.sys.executable,
        "KEDRO_JOBS_ENDPOINT": moto_server.endpoint_url,
        "KEDRO_JOBS_STACK": "initscript",
    }
    result = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["table"] == "initscript-jobs"
    ddb = boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url)
    assert ddb.describe_table(TableName="initscript-jobs")["Table"]["TableStatus"] == "ACTIVE"
    sqs = boto3.client("sqs", endpoint_url=moto_server.endpoint_url)
    assert sqs.get_queue_url(QueueName="initscript-dlq")["QueueUrl"]
