"""The roles that record past node durations (consumer/segments.py NodeStats) may read and
write them conditionally: S3's If-Match / If-None-Match puts need only s3:PutObject, and a
read of an object not written yet must be a 404 (s3:ListBucket), not AccessDenied."""

from __future__ import annotations

from typing import Any

import pytest

WRITERS = {
    # The consumer function's inline SAM statements; the Fargate task role's policy documents.
    "ConsumerFunction": lambda props: [
        s for p in props["Policies"] if "Statement" in p for s in p["Statement"]
    ],
    "FargateTaskRole": lambda props: [
        s for p in props["Policies"] for s in p["PolicyDocument"]["Statement"]
    ],
}


def _actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


@pytest.mark.parametrize("resource", sorted(WRITERS))
def test_node_duration_writers_may_read_and_write_them(
    template: dict[str, Any], resource: str
) -> None:
    statements = WRITERS[resource](template["Resources"][resource]["Properties"])
    objects = {"Fn::Sub": "${ArtifactsBucket.Arn}/*"}  # stats/nodes/<pipeline>.json among them
    on_objects = {a for s in statements if s["Resource"] == objects for a in _actions(s)}
    assert {"s3:GetObject", "s3:PutObject"} <= on_objects
    bucket = {"Fn::GetAtt": ["ArtifactsBucket", "Arn"]}
    assert any("s3:ListBucket" in _actions(s) for s in statements if s["Resource"] == bucket)
