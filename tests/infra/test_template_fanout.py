"""The fan-out state machine in template.yaml (docs/fan-out.md): what it sends where, and who
may start it or answer its tasks."""

from __future__ import annotations

from typing import Any

import pytest

from kedro_jobs.core.fanout import MESSAGE_DEAD_LETTERED, TASK_HEARTBEAT_SECONDS

from .conftest import transformed

STATES = ("states:StartExecution", "states:SendTaskSuccess", "states:SendTaskFailure",
          "states:SendTaskHeartbeat")  # fmt: skip


@pytest.fixture(scope="module")
def cfn(template: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = transformed(template)
    return result


def _statements(cfn: dict[str, Any], role: str) -> list[dict[str, Any]]:
    props = cfn["Resources"][role]["Properties"]
    return [s for p in props.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def _actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


def test_the_state_machine_may_only_send_to_the_jobs_queue(cfn: dict[str, Any]) -> None:
    machine = cfn["Resources"]["FanOutStateMachine"]["Properties"]
    assert machine["RoleArn"] == {"Fn::GetAtt": ["FanOutStateMachineRole", "Arn"]}
    statements = _statements(cfn, "FanOutStateMachineRole")
    assert [(_actions(s), s["Resource"]) for s in statements] == [
        ({"sqs:SendMessage"}, {"Fn::GetAtt": ["JobsQueue", "Arn"]})
    ]
    trust = cfn["Resources"]["FanOutStateMachineRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}


def test_only_the_consumer_starts_executions_and_answers_tasks(cfn: dict[str, Any]) -> None:
    """The dead-letter function may only check a token and fail its task (a fan-out message
    it got was lost): no start, no success."""
    roles = [n for n, r in cfn["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    granted = {
        role: [s for s in _statements(cfn, role) if _actions(s) & set(STATES)] for role in roles
    }
    assert {role for role, found in granted.items() if found} == {
        "ConsumerFunctionRole",
        "FargateTaskRole",  # a group too long for an invocation, run as a task, answers
        "DeadLetterFunctionRole",
    }
    (statement,) = granted["ConsumerFunctionRole"]
    assert _actions(statement) == set(STATES)
    assert statement["Resource"] == {"Ref": "FanOutStateMachine"}
    # The task answers its group's task and beats its heartbeat; it starts no execution.
    (task,) = granted["FargateTaskRole"]
    assert _actions(task) == set(STATES) - {"states:StartExecution"}
    assert task["Resource"] == {"Ref": "FanOutStateMachine"}
    (dead,) = granted["DeadLetterFunctionRole"]
    assert _actions(dead) == {"states:SendTaskHeartbeat", "states:SendTaskFailure"}
    assert dead["Resource"] == {"Ref": "FanOutStateMachine"}


def test_a_dead_groups_message_may_be_sent_again_by_its_siblings(cfn: dict[str, Any]) -> None:
    """A group's worker (a consumer invocation or a Fargate task) sends a dead sibling's
    message again: the jobs queue only (the Fargate group's own message is gone once its
    task was started, so nothing else would)."""
    for role in ("ConsumerFunctionRole", "FargateTaskRole"):
        sends = [s["Resource"] for s in _statements(cfn, role) if "sqs:SendMessage" in _actions(s)]
        assert {"Fn::GetAtt": ["JobsQueue", "Arn"]} in sends, role
        assert all("*" not in str(resource) for resource in sends), role


def test_every_task_sends_to_the_jobs_queue_and_waits_for_its_token(
    template: dict[str, Any],
) -> None:
    machine = template["Resources"]["FanOutStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"] == {"JobsQueueUrl": {"Ref": "JobsQueue"}}
    states = machine["Definition"]["States"]
    group = states["Levels"]["ItemProcessor"]["States"]["Groups"]["ItemProcessor"]["States"]
    tasks = {"group": group["Group"], "commit": states["Commit"], "discard": states["Discard"]}
    for kind, task in tasks.items():
        assert task["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
        assert task["Parameters"]["QueueUrl"] == "${JobsQueueUrl}"
        body = task["Parameters"]["MessageBody"]
        assert body["fanout"] == kind and body["token.$"] == "$$.Task.Token"
        # The consumer checks a message's token with a heartbeat before it acts on it.
        assert task["HeartbeatSeconds"] >= 900
        # A fanned-out job between its groups is left to the state machine this long.
        assert task["HeartbeatSeconds"] == TASK_HEARTBEAT_SECONDS
        # Explicit, above the heartbeat: the States Language's default is 60 s (emulators
        # apply it), which would fail every group that runs a minute.
        assert task["TimeoutSeconds"] > task["HeartbeatSeconds"]
    assert states["Levels"]["MaxConcurrency"] == 1  # one level after the other
    assert states["Levels"]["Catch"][0]["Next"] == "Discard"  # a failed group commits nothing
    assert states["Discard"]["Next"] == "GroupsFailed"
    # A commit the dead-letter function failed goes to the discard (no staging left), and a
    # dead-lettered discard is sent again.
    assert states["Commit"]["Catch"][0]["Next"] == "Discard"
    assert states["Discard"]["Retry"][0]["ErrorEquals"] == [MESSAGE_DEAD_LETTERED]
    # The discard learns what ended the groups (a task timed out): the job's error says it.
    assert states["Discard"]["Parameters"]["MessageBody"]["failure.$"] == "$.failure"


def test_the_consumer_knows_the_state_machine(template: dict[str, Any]) -> None:
    for function in ("ConsumerFunction", "DeadLetterFunction"):
        env = template["Resources"][function]["Properties"]["Environment"]
        assert env["Variables"]["FAN_OUT_STATE_MACHINE_ARN"] == {"Ref": "FanOutStateMachine"}
