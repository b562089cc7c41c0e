"""template.yaml: every function that changes jobs may publish their events, and knows where."""

from __future__ import annotations

from typing import Any

import pytest

# The functions whose code changes jobs through a store role's from_settings (and so publishes).
JOB_WRITERS = ("ApiFunction", "ConsumerFunction", "SweeperFunction", "DeadLetterFunction")


def _put_events_statements(cfn: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role = cfn["Resources"][f"{function}Role"]["Properties"]
    found = []
    for policy in role.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            if "events:PutEvents" in ([actions] if isinstance(actions, str) else actions):
                found.append(statement)
    return found


@pytest.mark.parametrize("function", JOB_WRITERS)
def test_each_job_writer_names_the_bus(cfn: dict[str, Any], function: str) -> None:
    variables = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]
    assert variables.get("EVENT_BUS_NAME") == "default"


@pytest.mark.parametrize("function", JOB_WRITERS)
def test_each_job_writer_may_put_events_on_that_bus_only(
    cfn: dict[str, Any], function: str
) -> None:
    statements = _put_events_statements(cfn, function)
    assert len(statements) == 1, statements
    statement = statements[0]
    assert statement["Effect"] == "Allow"
    # The default bus's ARN, never "*".
    pattern, values = statement["Resource"]["Fn::Sub"]
    assert pattern.endswith(":event-bus/${eventBusName}")
    assert pattern.startswith("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:")
    bus = cfn["Resources"][function]["Properties"]["Environment"]["Variables"]["EVENT_BUS_NAME"]
    assert values == {"eventBusName": bus}
