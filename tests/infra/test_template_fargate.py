"""template.yaml's Fargate compute: created only with an image, least privilege, the consumer's
environment and rights to start the tasks."""

from __future__ import annotations

from typing import Any

import pytest

from kedro_jobs.core.compute import TASK_ENTRY_POINT
from kedro_jobs.core.settings import Settings
from kedro_jobs_local.template import resolve_value

from .conftest import transformed

ECS_RESOURCES = (
    "FargateCluster",
    "FargateTaskDefinition",
    "FargateTaskLogGroup",
    "FargateExecutionRole",
    "FargateTaskRole",
    "FargateDispatchPolicy",
)
IMAGE = (
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/"
    "kedro-jobs7f2a3b4c/consumerfunction1a2b3c4drepo:consumerfunction-0a1b2c3d-python3.11-v1"
)
WITH_FARGATE = {"FargateImageUri": IMAGE, "FargateSubnets": "subnet-1,subnet-2"}


def _statements(policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _container(template: dict[str, Any]) -> dict[str, Any]:
    props = template["Resources"]["FargateTaskDefinition"]["Properties"]
    [container] = props["ContainerDefinitions"]
    return dict(container)


def test_parameters_and_their_defaults(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["FargateImageUri"]["Default"] == ""
    assert params["FargateTaskSeconds"]["Default"] == 28800  # 8 h
    assert params["FargateTaskSeconds"]["Default"] == Settings().fargate_task_seconds
    assert params["FargateCpu"]["Default"] == 1024
    assert params["FargateMemory"]["Default"] == 4096
    assert params["FargateAssignPublicIp"]["Default"] == "DISABLED"
    assert {"FargateSubnets", "FargateSecurityGroups"} <= set(params)


def test_ecs_resources_exist_only_with_an_image(template: dict[str, Any]) -> None:
    for name in ECS_RESOURCES:
        assert template["Resources"][name]["Condition"] == "HasFargate", name
    condition = template["Conditions"]["HasFargate"]
    assert resolve_value(condition) is False
    assert resolve_value(condition, parameter_overrides=WITH_FARGATE) is True
    with pytest.raises(ValueError, match="FargateSubnets"):  # the rule, as CloudFormation
        resolve_value(condition, parameter_overrides={"FargateImageUri": IMAGE})


def test_the_task_definition(template: dict[str, Any]) -> None:
    props = template["Resources"]["FargateTaskDefinition"]["Properties"]
    assert props["RequiresCompatibilities"] == ["FARGATE"]
    assert props["NetworkMode"] == "awsvpc"
    assert props["Cpu"] == {"Ref": "FargateCpu"}
    assert props["Memory"] == {"Ref": "FargateMemory"}
    assert props["ExecutionRoleArn"] != props["TaskRoleArn"]
    container = _container(template)
    assert container["Name"] == Settings().fargate_container_name
    assert container["Image"] == {"Ref": "FargateImageUri"}
    # The Lambda image's entry point starts the Lambda runtime: the task names its module.
    assert container["EntryPoint"] == list(TASK_ENTRY_POINT)
    assert container["ReadonlyRootFilesystem"] is True
    assert [m["ContainerPath"] for m in container["MountPoints"]] == ["/tmp"]
    logs = container["LogConfiguration"]
    assert logs["LogDriver"] == "awslogs"
    assert logs["Options"]["awslogs-group"] == {"Ref": "FargateTaskLogGroup"}
    group = template["Resources"]["FargateTaskLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_task_has_the_consumer_functions_environment(template: dict[str, Any]) -> None:
    consumer = {
        **template["Globals"]["Function"]["Environment"]["Variables"],
        **template["Resources"]["ConsumerFunction"]["Properties"]["Environment"]["Variables"],
    }
    task = {v["Name"]: v["Value"] for v in _container(template)["Environment"]}
    # The endpoint is for sam local only; the other FARGATE_* say how to start tasks.
    expected = {k for k in consumer if k != "AWS_ENDPOINT_URL" and not k.startswith("FARGATE_")} | {
        "FARGATE_TASK_SECONDS"
    }
    assert expected <= set(task), expected - set(task)
    assert task["POWERTOOLS_TRACE_DISABLED"] == "true"  # no X-Ray daemon beside the task
    for name in expected - {"POWERTOOLS_TRACE_DISABLED"}:
        assert task[name] == consumer[name], name


def test_the_consumer_and_the_api_know_the_cluster(template: dict[str, Any]) -> None:
    env = template["Resources"]["ConsumerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["FARGATE_CLUSTER"] == {"Fn::If": ["HasFargate", {"Ref": "FargateCluster"}, ""]}
    assert env["FARGATE_TASK_DEFINITION"] == {
        "Fn::If": ["HasFargate", {"Ref": "FargateTaskDefinition"}, ""]
    }
    assert env["FARGATE_SUBNETS"] == {"Ref": "FargateSubnets"}
    assert env["FARGATE_SECURITY_GROUPS"] == {"Ref": "FargateSecurityGroups"}
    assert env["FARGATE_TASK_SECONDS"] == {"Ref": "FargateTaskSeconds"}
    assert resolve_value(env["FARGATE_ASSIGN_PUBLIC_IP"]) == "false"
    public = {**WITH_FARGATE, "FargateAssignPublicIp": "ENABLED"}
    assert resolve_value(env["FARGATE_ASSIGN_PUBLIC_IP"], parameter_overrides=public) == "true"
    assert resolve_value(env["FARGATE_CLUSTER"]) == ""  # no image: the API answers 422
    api = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api["FARGATE_CLUSTER"] == env["FARGATE_CLUSTER"]


def test_roles_have_no_wildcard_actions(template: dict[str, Any]) -> None:
    for name in ("FargateExecutionRole", "FargateTaskRole"):
        props = template["Resources"][name]["Properties"]
        trust = props["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "ecs-tasks.amazonaws.com"}]
        for statement in _statements(props["Policies"]):
            actions = _listed(statement["Action"])
            assert not any("*" in a for a in actions), (name, actions)
            if statement.get("Resource") == "*":
                # The one action without resource-level permissions.
                assert actions == ["ecr:GetAuthorizationToken"], (name, actions)


def test_the_task_role_has_no_more_than_the_consumer(template: dict[str, Any]) -> None:
    props = template["Resources"]["FargateTaskRole"]["Properties"]
    actions = {a for s in _statements(props["Policies"]) for a in _listed(s["Action"])}
    consumer = template["Resources"]["ConsumerFunction"]["Properties"]["Policies"]
    allowed = {a for p in consumer if "Statement" in p for s in p["Statement"] for a in s["Action"]}
    assert actions - allowed == {"events:PutEvents"}  # the consumer's EventBridge policy's
    # A task never continues a job; a group's task sends a dead sibling group's message again.
    assert {a for a in actions if a.startswith("sqs:")} == {"sqs:SendMessage"}
    assert "states:StartExecution" not in actions  # it answers its group, starts nothing


def test_image_pull_is_limited_to_the_images_repository(template: dict[str, Any]) -> None:
    props = template["Resources"]["FargateExecutionRole"]["Properties"]
    [pull] = [s for s in _statements(props["Policies"]) if "ecr:BatchGetImage" in s["Action"]]
    arn = resolve_value(pull["Resource"], parameter_overrides=WITH_FARGATE)
    assert arn == (
        "arn:aws:ecr:eu-west-1:123456789012:repository/"
        "kedro-jobs7f2a3b4c/consumerfunction1a2b3c4drepo"
    )
    by_digest = dict(WITH_FARGATE)
    by_digest["FargateImageUri"] = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/repo@sha256:ab"
    assert resolve_value(pull["Resource"], parameter_overrides=by_digest).endswith(
        ":repository/repo"
    )


def test_the_consumer_may_start_these_tasks_and_pass_only_their_roles(
    template: dict[str, Any],
) -> None:
    props = template["Resources"]["FargateDispatchPolicy"]["Properties"]
    assert props["Roles"] == [{"Ref": "ConsumerFunctionRole"}]
    statements = {s["Action"][0]: s for s in props["PolicyDocument"]["Statement"]}
    assert set(statements) == {"ecs:RunTask", "ecs:TagResource", "iam:PassRole"}
    run = statements["ecs:RunTask"]
    family = template["Resources"]["FargateTaskDefinition"]["Properties"]["Family"]
    assert resolve_value(family) == "kedro-jobs-job"
    assert resolve_value(run["Resource"]) == (
        "arn:aws:ecs:us-east-1:123456789012:task-definition/kedro-jobs-job:*"
    )
    assert run["Condition"] == {
        "ArnEquals": {"ecs:cluster": {"Fn::GetAtt": ["FargateCluster", "Arn"]}}
    }
    tag = statements["ecs:TagResource"]
    assert tag["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}
    passing = statements["iam:PassRole"]
    assert passing["Resource"] == [
        {"Fn::GetAtt": ["FargateExecutionRole", "Arn"]},
        {"Fn::GetAtt": ["FargateTaskRole", "Arn"]},
    ]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


def test_sam_transform_keeps_the_ecs_resources(template: dict[str, Any]) -> None:
    cfn = transformed(template, WITH_FARGATE)
    for name in ECS_RESOURCES:
        assert name in cfn["Resources"], name
    assert cfn["Resources"]["ConsumerFunctionRole"]["Type"] == "AWS::IAM::Role"
