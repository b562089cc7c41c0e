"""template.yaml and rerun from failure: the checkpoint a stopped job keeps lives where the
bucket's lifecycle rule expires it after the days the API offers a rerun for, and the API
may look it up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kedro_jobs.core.models import utcnow
from kedro_jobs.core.rerun import REUSABLE_DAYS, reusable_until
from kedro_jobs.runner.checkpoint import job_checkpoints
from kedro_jobs.runner.handover import job_handovers


def _checkpoint_rule(template: dict[str, Any]) -> dict[str, Any]:
    bucket = template["Resources"]["ArtifactsBucket"]["Properties"]
    [rule] = [
        r for r in bucket["LifecycleConfiguration"]["Rules"] if r["Id"] == "expire-checkpoints"
    ]
    return rule


def test_kept_checkpoints_expire_after_the_days_a_rerun_is_offered(
    template: dict[str, Any],
) -> None:
    rule = _checkpoint_rule(template)
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == REUSABLE_DAYS == 7
    # Offered an hour less than S3 keeps them (at least the rule's days: it expires at the
    # midnight after), so a rerun is never accepted on data S3 may have removed.
    now = utcnow()
    assert reusable_until(now) - now == timedelta(days=REUSABLE_DAYS, hours=-1)


def test_the_consumers_checkpoints_are_under_the_rules_prefix(template: dict[str, Any]) -> None:
    variables = template["Resources"]["ConsumerFunction"]["Properties"]["Environment"]
    root = variables["Variables"]["JOBS_DATA_ROOT"]
    assert root == {"Fn::Sub": "s3://${ArtifactsBucket}/data"}
    where = job_checkpoints("s3://bucket/data", "job-1")
    assert where.removeprefix("s3://bucket/").startswith(_checkpoint_rule(template)["Prefix"])


def test_the_api_may_look_a_kept_checkpoint_up(template: dict[str, Any]) -> None:
    """A rerun's 409 for data that is gone is a HeadObject (s3:GetObject) on the bucket."""
    policies = template["Resources"]["ApiFunction"]["Properties"]["Policies"]
    statements = [s for p in policies if "Statement" in p for s in p["Statement"]]
    assert any(
        "s3:GetObject" in s["Action"] and s["Resource"] == {"Fn::Sub": "${ArtifactsBucket.Arn}/*"}
        for s in statements
    )


def test_kept_group_hand_overs_expire_after_the_days_a_rerun_is_offered(
    template: dict[str, Any],
) -> None:
    """A fanned-out job keeps its completed groups' hand-overs for a rerun from failure:
    under a rule of their own, as long as a checkpoint, where the consumer writes them."""
    bucket = template["Resources"]["ArtifactsBucket"]["Properties"]
    [rule] = [
        r for r in bucket["LifecycleConfiguration"]["Rules"] if r["Id"] == "expire-group-handovers"
    ]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == REUSABLE_DAYS
    where = job_handovers("s3://bucket/data", "job-1")
    assert f"{where}/g1/".removeprefix("s3://bucket/").startswith(rule["Prefix"])
    # Not under the checkpoints' rule: neither prefix holds the other's files.
    assert not where.removeprefix("s3://bucket/").startswith(_checkpoint_rule(template)["Prefix"])
