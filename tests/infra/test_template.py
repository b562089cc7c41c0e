"""template.yaml: what samtranslator makes of it, and the rules it must keep."""

from __future__ import annotations

import copy
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs_local.template import resolve_value

from .conftest import ROOT, transformed


def _of_type(cfn: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == kind}


def _statements(cfn: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role = cfn["Resources"][f"{function}Role"]["Properties"]
    out: list[dict[str, Any]] = []
    for policy in role.get("Policies", []):
        out.extend(policy["PolicyDocument"]["Statement"])
    return out


def _actions(cfn: dict[str, Any], function: str) -> set[str]:
    actions: set[str] = set()
    for statement in _statements(cfn, function):
        value = statement["Action"]
        actions.update([value] if isinstance(value, str) else value)
    return actions


def test_cfn_lint_passes() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_consumer_event_source_mapping(cfn: dict[str, Any]) -> None:
    [(_, mapping)] = [
        (k, v)
        for k, v in _of_type(cfn, "AWS::Lambda::EventSourceMapping").items()
        if v["Properties"]["FunctionName"] == {"Ref": "ConsumerFunction"}
    ]
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == {"Ref": "BatchSize"}
    assert props["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "MaxConcurrency"}}
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]}


def test_dead_letter_consumer_reads_the_dlq(cfn: dict[str, Any]) -> None:
    mappings = _of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    dlq = [m for m in mappings if m["Properties"]["FunctionName"] == {"Ref": "DeadLetterFunction"}]
    assert dlq[0]["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]}
    assert dlq[0]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_redrive_policy_points_at_the_dlq(cfn: dict[str, Any]) -> None:
    policy = cfn["Resources"]["JobsQueue"]["Properties"]["RedrivePolicy"]
    assert policy["deadLetterTargetArn"] == {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]}
    assert policy["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}


def test_visibility_timeout_is_six_times_the_consumer_timeout(template: dict[str, Any]) -> None:
    allowed = template["Parameters"]["ConsumerTimeout"]["AllowedValues"]
    mapping = template["Mappings"]["VisibilityTimeout"]
    assert template["Resources"]["JobsQueue"]["Properties"]["VisibilityTimeout"] == {
        "Fn::FindInMap": ["VisibilityTimeout", {"Ref": "ConsumerTimeout"}, "Seconds"]
    }
    for timeout in allowed:
        assert mapping[str(timeout)]["Seconds"] >= 6 * int(timeout)
    consumer = template["Resources"]["ConsumerFunction"]["Properties"]
    assert consumer["Timeout"] == {"Ref": "ConsumerTimeout"}


def test_api_routes_go_to_the_api_function(cfn: dict[str, Any]) -> None:
    [api] = _of_type(cfn, "AWS::ApiGatewayV2::Api").values()
    paths = api["Properties"]["Body"]["paths"]
    for path in ("/api/v1", "/api/v1/{proxy+}"):
        integration = paths[path]["x-amazon-apigateway-any-method"][
            "x-amazon-apigateway-integration"
        ]
        assert "${ApiFunction.Arn}" in integration["uri"]["Fn::Sub"]
        assert integration["payloadFormatVersion"] == "2.0"
        assert integration["type"] == "aws_proxy"
    # The routes are OpenAPI, not function events: the invoke permission is the template's.
    [permission] = _of_type(cfn, "AWS::Lambda::Permission").values()
    props = permission["Properties"]
    assert props["FunctionName"] == {"Ref": "ApiFunction"}
    assert props["Principal"] == "apigateway.amazonaws.com"
    assert "${HttpApi}/*" in props["SourceArn"]["Fn::Sub"]


def _deployed_api(template: dict[str, Any], **parameters: str) -> dict[str, Any]:
    """The API's OpenAPI body as CloudFormation resolves it (integration URIs left out)."""
    body = copy.deepcopy(template["Resources"]["HttpApi"]["Properties"]["DefinitionBody"])
    for item in body["paths"].values():
        for operation in item.values():
            operation.pop("x-amazon-apigateway-integration")
    resolved: dict[str, Any] = resolve_value(
        body, template=template, parameter_overrides=parameters
    )
    return resolved


def test_no_jwt_issuer_means_no_authorizer(template: dict[str, Any]) -> None:
    body = _deployed_api(template)
    assert body["components"]["securitySchemes"] == {}
    for path in ("/api/v1", "/api/v1/{proxy+}"):
        assert body["paths"][path]["x-amazon-apigateway-any-method"]["security"] == []


def test_jwt_issuer_puts_every_api_route_behind_the_authorizer(template: dict[str, Any]) -> None:
    issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
    body = _deployed_api(template, JwtIssuer=issuer, JwtAudience="client-a,client-b")
    scheme = body["components"]["securitySchemes"]["JwtAuthorizer"]
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "jwt"
    assert authorizer["identitySource"] == "$request.header.Authorization"
    assert authorizer["jwtConfiguration"] == {
        "issuer": issuer,
        "audience": ["client-a", "client-b"],
    }
    for path in ("/api/v1", "/api/v1/{proxy+}"):
        operation = body["paths"][path]["x-amazon-apigateway-any-method"]
        assert operation["security"] == [{"JwtAuthorizer": []}]
    # The docs show the schema only, and stay public.
    assert "security" not in body["paths"]["/docs"]["get"]


def test_jwt_issuer_without_audience_is_refused(template: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="JwtNeedsAudience"):
        _deployed_api(template, JwtIssuer="https://issuer.example")


def test_jwt_parameters_transform(template: dict[str, Any]) -> None:
    parameters = {"JwtIssuer": "https://issuer.example", "JwtAudience": "a"}
    assert transformed(template, parameters)["Resources"]["HttpApi"]


def test_least_privilege_per_function(cfn: dict[str, Any]) -> None:
    api = _actions(cfn, "ApiFunction")
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "sqs:SendMessage"} <= api
    assert "dynamodb:BatchGetItem" in api  # a listing reads its page's jobs by key
    assert "s3:GetObject" in api
    assert "cloudwatch:GetMetricStatistics" in api  # /health's age of the oldest message
    assert not {"dynamodb:Scan", "dynamodb:DeleteTable", "s3:PutObject", "s3:DeleteBucket"} & api
    consumer = _actions(cfn, "ConsumerFunction")
    assert {"dynamodb:UpdateItem", "dynamodb:PutItem", "s3:PutObject"} <= consumer
    assert not {"dynamodb:Scan", "dynamodb:Query"} & consumer
    # It deletes under the data root only (stale files of a folder, spent checkpoints, its
    # commit locks), never logs or results.
    deletes = [s for s in _statements(cfn, "ConsumerFunction") if "s3:DeleteObject" in s["Action"]]
    assert [s["Resource"] for s in deletes] == [{"Fn::Sub": "${ArtifactsBucket.Arn}/data/*"}]
    # The consumer sends to the dead-letter queue (a message that can never succeed) and to
    # the jobs queue (a job's next segment; a dead group's message again), nowhere else.
    sends = [s for s in _statements(cfn, "ConsumerFunction") if "sqs:SendMessage" in s["Action"]]
    assert [s["Resource"] for s in sends] == [
        {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]},
        {"Fn::GetAtt": ["JobsQueue", "Arn"]},
    ]
    assert "sqs:ChangeMessageVisibility" in consumer  # a retryable record's backoff
    dead_letters = _actions(cfn, "DeadLetterFunction")
    # A dead-lettered fan-out message: its token checked, its task failed (docs/fan-out.md).
    assert dead_letters == {
        "dynamodb:GetItem", "dynamodb:UpdateItem", "events:PutEvents",
        "states:SendTaskHeartbeat", "states:SendTaskFailure",
    }  # fmt: skip
    sweeper = _actions(cfn, "SweeperFunction")
    assert sweeper == {
        "events:PutEvents",
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",  # the queue's depth: waiting is not lost
    }
    # "*" only for reads AWS does not scope to resources.
    unscoped = {"cloudwatch:GetMetricStatistics", "scheduler:ListSchedules"}
    for function in ("ApiFunction", "ConsumerFunction", "DeadLetterFunction", "SweeperFunction"):
        for statement in _statements(cfn, function):
            resources = statement["Resource"]
            actions = statement["Action"]
            if set(actions if isinstance(actions, list) else [actions]) <= unscoped:
                continue
            assert resources != "*" and "*" not in (
                resources if isinstance(resources, list) else []
            )


def test_table_indexes_ttl_and_recovery(template: dict[str, Any]) -> None:
    table = template["Resources"]["JobsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        "by_user",
        "by_user_status",
        "by_user_pipeline",
        "sweep",
        "by_user_schedule",
    }
    # Keys only (the status too where a listing filters on it): no write to a job's
    # progress or results is written again to an index.
    projections = {i["IndexName"]: i["Projection"] for i in table["GlobalSecondaryIndexes"]}
    assert projections == {
        "by_user": {"ProjectionType": "KEYS_ONLY"},
        "by_user_status": {"ProjectionType": "KEYS_ONLY"},
        "by_user_pipeline": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]},
        "sweep": {"ProjectionType": "KEYS_ONLY"},
        # A schedule's runs, with what the overlap check and a schedule's last status read.
        "by_user_schedule": {
            "ProjectionType": "INCLUDE",
            "NonKeyAttributes": ["status", "pipeline_name", "scheduled_for"],
        },
    }
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_bucket_is_private_encrypted_and_expires_logs(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["ArtifactsBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = {r["Prefix"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["logs/"]["ExpirationInDays"] == {"Ref": "LogRetentionDays"}
    # A job abandoned between segments leaves a checkpoint, a stopped job keeps one for a
    # rerun from failure: gone within a week (tests/infra/test_template_rerun.py).
    assert rules["data/.kedro-jobs/checkpoints/"]["ExpirationInDays"] == 7
    # What a crash may leave: a commit's lock, and the parts of an upload cut short.
    assert rules["data/.kedro-jobs/locks/"]["ExpirationInDays"] == 1
    assert rules["data/"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rules["data/.kedro-jobs/checkpoints/"]["AbortIncompleteMultipartUpload"]
    assert rules["outputs/"]["ExpirationInDays"] == 90


def test_checkpoints_are_signed_with_a_generated_key_both_computes_get(
    template: dict[str, Any],
) -> None:
    secret = template["Resources"]["SigningKey"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    reference = {"Fn::Sub": "{{resolve:secretsmanager:${SigningKey}:SecretString}}"}
    consumer = template["Resources"]["ConsumerFunction"]["Properties"]
    assert consumer["Environment"]["Variables"]["SIGNING_KEY"] == reference
    task = template["Resources"]["FargateTaskDefinition"]["Properties"]
    environment = {e["Name"]: e["Value"] for e in task["ContainerDefinitions"][0]["Environment"]}
    assert environment["SIGNING_KEY"] == reference
    # The API seals a schedule's reserved owner with it; the sweeper and DLQ functions never
    # see it.
    api = template["Resources"]["ApiFunction"]["Properties"]
    assert api["Environment"]["Variables"]["SIGNING_KEY"] == reference
    for other in ("SweeperFunction", "DeadLetterFunction"):
        props = template["Resources"].get(other, {}).get("Properties", {})
        assert "SIGNING_KEY" not in props.get("Environment", {}).get("Variables", {})


def test_outputs(cfn: dict[str, Any]) -> None:
    assert {
        "ApiUrl",
        "JobsQueueUrl",
        "JobsDeadLetterQueueUrl",
        "JobsTableName",
        "ArtifactsBucketName",
    } <= set(cfn["Outputs"])


def test_every_allowed_timeout_transforms_and_keeps_the_rule(template: dict[str, Any]) -> None:
    queue = template["Resources"]["JobsQueue"]["Properties"]
    for timeout in template["Parameters"]["ConsumerTimeout"]["AllowedValues"]:
        parameters = {"ConsumerTimeout": str(timeout)}
        assert transformed(template, parameters)["Resources"]["JobsQueue"]
        visibility = resolve_value(
            queue["VisibilityTimeout"], template=template, parameter_overrides=parameters
        )
        assert int(visibility) >= 6 * int(timeout)
        assert int(visibility) <= 43_200  # SQS's maximum visibility timeout


def test_stage_tags_the_functions_and_the_api(cfn: dict[str, Any]) -> None:
    for function in _of_type(cfn, "AWS::Lambda::Function").values():
        tags = {t["Key"]: t["Value"] for t in function["Properties"]["Tags"]}
        assert tags["kedro-jobs:stage"] == {"Ref": "Stage"}
    [api] = _of_type(cfn, "AWS::ApiGatewayV2::Api").values()
    tags = {
        t["name"]: t["x-amazon-apigateway-tag-value"] for t in api["Properties"]["Body"]["tags"]
    }
    assert tags["kedro-jobs:stage"] == {"Ref": "Stage"}


def test_zip_requirements_match_the_package_dependencies() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = (ROOT / "functions" / "requirements.txt").read_text().splitlines()
    listed = [line for line in lines if line and not line.startswith("#")]
    assert listed == declared


def test_handlers_named_in_the_template_exist(template: dict[str, Any]) -> None:
    import importlib

    handlers = [
        spec["Properties"]["Handler"]
        for spec in template["Resources"].values()
        if spec["Type"] == "AWS::Serverless::Function" and "Handler" in spec["Properties"]
    ]
    dockerfile = (ROOT / "functions" / "consumer.Dockerfile").read_text()
    handlers.append(dockerfile.split('CMD ["')[1].split('"')[0])
    for handler in handlers:
        module, _, attr = handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), handler


@pytest.mark.parametrize(("tracing", "disabled"), [("PassThrough", "true"), ("Active", "false")])
def test_tracing_is_opt_in_and_tells_the_functions(
    template: dict[str, Any], tracing: str, disabled: str
) -> None:
    assert template["Parameters"]["Tracing"]["Default"] == "PassThrough"
    overrides = {} if tracing == "PassThrough" else {"Tracing": tracing}
    globals_ = template["Globals"]["Function"]
    assert resolve_value(globals_["Tracing"], template=template, parameter_overrides=overrides) == (
        tracing
    )
    variables = globals_["Environment"]["Variables"]
    resolved = resolve_value(
        variables["POWERTOOLS_TRACE_DISABLED"], template=template, parameter_overrides=overrides
    )
    assert resolved == disabled
