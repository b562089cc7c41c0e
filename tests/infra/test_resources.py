"""The template's resources created on a real moto server by the code that `make dev`, the
tests and the LocalStack init script share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import boto3
import pytest

from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.resources import create_resources, reset_resources
from kedro_jobs_local.template import load_template

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
        "by_user", "by_user_status", "by_user_pipeline", "sweep", "by_user_schedule",
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
    assert attrs["MessageRetentionPeriod"] == "345600" and attrs["SqsManagedSseEnabled"] == "true"
    dlq = sqs.get_queue_attributes(QueueUrl=res.dlq_url, AttributeNames=["All"])["Attributes"]
    assert dlq["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    backups = ddb.describe_continuous_backups(TableName=res.table_name)
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
    idem_ttl = ddb.describe_time_to_live(TableName=res.idempotency_table_name)
    assert idem_ttl["TimeToLiveDescription"]["AttributeName"] == "expiration"

    s3 = boto3.client("s3", endpoint_url=url)
    s3.head_bucket(Bucket=res.bucket)
    [rule] = s3.get_bucket_encryption(Bucket=res.bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=res.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert s3.get_bucket_versioning(Bucket=res.bucket)["Status"] == "Enabled"
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=res.bucket)["Rules"]}
    assert rules["expire-logs"]["Filter"] == {"Prefix": "logs/"}
    assert rules["expire-logs"]["Expiration"] == {"Days": 30}  # LogRetentionDays' default


def test_reset_empties_everything_including_old_versions(moto_server: MotoServer) -> None:
    url = moto_server.endpoint_url
    res = create_resources(endpoint_url=url, stack_name="infra-reset")
    s3 = boto3.client("s3", endpoint_url=url)
    for body in (b"1", b"2"):
        s3.put_object(Bucket=res.bucket, Key="logs/job.log", Body=body)
    boto3.client("sqs", endpoint_url=url).send_message(QueueUrl=res.queue_url, MessageBody="{}")
    ddb = boto3.client("dynamodb", endpoint_url=url)
    ddb.put_item(TableName=res.table_name, Item={"id": {"S": "j1"}})
    reset_resources(res, endpoint_url=url)
    assert "Versions" not in s3.list_object_versions(Bucket=res.bucket)
    assert ddb.scan(TableName=res.table_name)["Count"] == 0
    attrs = boto3.client("sqs", endpoint_url=url).get_queue_attributes(
        QueueUrl=res.queue_url, AttributeNames=["ApproximateNumberOfMessages", "RedrivePolicy"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and "RedrivePolicy" in attrs


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
    with pytest.raises(ValueError, match="below 2"):  # MinValue, as CloudFormation checks
        create_resources(endpoint_url=url, parameter_overrides={"MaxConcurrency": "1"})
    with pytest.raises(ValueError, match="JwtNeedsAudience"):  # the template's Rules
        create_resources(endpoint_url=url, parameter_overrides={"JwtIssuer": "https://x"})


def test_cli_prints_shell_exports(moto_server: MotoServer) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "local/kedro_jobs_local/resources.py"),
         "--endpoint-url", moto_server.endpoint_url, "--stack-name", "infra-cli",
         "--parameter-overrides", "ConsumerTimeout=60", "--print-env", "ApiFunction"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines()
    )
    assert exports["JOBS_TABLE_NAME"] == "infra-cli-jobs"
    assert exports["POWERTOOLS_SERVICE_NAME"] == "kedro-jobs-api"
    assert exports["JOBS_QUEUE_URL"].endswith("/infra-cli-queue")


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
    # The checkpoint signing key's dynamic reference, resolved as one key per local stack.
    key = res.function_env("ConsumerFunction")["SIGNING_KEY"]
    assert len(key) == 64 and int(key, 16) >= 0
    again = create_resources(endpoint_url=moto_server.endpoint_url, stack_name="infra-a")
    assert again.function_env("ConsumerFunction")["SIGNING_KEY"] == key


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
        "KEDRO_JOBS_PYTHON": sys.executable,
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
