"""template.yaml's schedules: the schedule group, the role EventBridge Scheduler sends with
(the jobs queue only), the API's rights over its group's schedules only, and the settings the
API reads."""

from __future__ import annotations

from typing import Any

import boto3

from kedro_jobs.core.settings import Settings
from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.resources import create_resources

from .conftest import transformed


def _api_statements(cfn: dict[str, Any]) -> list[dict[str, Any]]:
    role = cfn["Resources"]["ApiFunctionRole"]["Properties"]
    return [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_schedule_group_and_the_schedulers_role(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["ScheduleGroup"]["Type"] == "AWS::Scheduler::ScheduleGroup"
    role = resources["SchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # It can do one thing: send to the jobs queue.
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statements == [
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": ["JobsQueue", "Arn"]},
        }
    ]


def test_the_api_manages_only_its_groups_schedules(template: dict[str, Any]) -> None:
    statements = _api_statements(transformed(template))
    scheduler = [
        s for s in statements if any(a.startswith("scheduler:") for a in _listed(s["Action"]))
    ]
    by_action = {a: s["Resource"] for s in scheduler for a in _listed(s["Action"])}
    assert set(by_action) == {
        "scheduler:CreateSchedule",
        "scheduler:GetSchedule",
        "scheduler:UpdateSchedule",
        "scheduler:DeleteSchedule",
        "scheduler:ListSchedules",
    }
    scoped = by_action["scheduler:CreateSchedule"]
    assert "schedule/${ScheduleGroup}/*" in scoped["Fn::Sub"]
    assert all(by_action[a] == scoped for a in by_action if a != "scheduler:ListSchedules")
    assert by_action["scheduler:ListSchedules"] == "*"  # not scoped by Scheduler
    # PassRole: the scheduler's role only, and only to Scheduler.
    (pass_role,) = [s for s in statements if "iam:PassRole" in _listed(s["Action"])]
    assert pass_role["Resource"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }


def test_the_api_is_told_the_group_role_and_queue(template: dict[str, Any]) -> None:
    variables = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SCHEDULE_GROUP_NAME"] == {"Ref": "ScheduleGroup"}
    assert variables["SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert variables["JOBS_QUEUE_ARN"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]}
    fields = Settings.model_fields
    assert {"schedule_group_name", "scheduler_role_arn", "jobs_queue_arn"} <= set(fields)


def test_local_resources_make_the_group_and_keep_its_schedules(moto_server: MotoServer) -> None:
    url = moto_server.endpoint_url
    res = create_resources(endpoint_url=url, stack_name="infra-s")
    group = res.resolver.refs["ScheduleGroup"]
    assert group == "infra-s-schedules"
    assert res.function_env("ApiFunction")["SCHEDULE_GROUP_NAME"] == group
    scheduler = boto3.client("scheduler", endpoint_url=url)
    scheduler.create_schedule(
        Name="kept",
        GroupName=group,
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": res.resolver.attrs[("JobsQueue", "Arn")],
            "RoleArn": "arn:aws:iam::1:role/r",
        },
    )
    create_resources(endpoint_url=url, stack_name="infra-s")  # again, as make dev's restart does
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]]
    assert names == ["kept"]
