"""Each kind of the template's resources made through the AWS API, from its resolved
properties: a DynamoDB table, an SQS queue, an S3 bucket, a schedule group. Idempotent: what
exists is reused and its settings applied again. Only boto3: it runs in LocalStack's own
Python too."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from botocore.exceptions import ClientError


def create_table(ddb: Any, props: dict[str, Any]) -> str:
    name = props["TableName"]
    args: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    sse = props.get("SSESpecification", {})
    if sse.get("SSEEnabled"):
        args["SSESpecification"] = {"Enabled": True}
    try:
        ddb.create_table(**args)
        ddb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
    except ddb.exceptions.ResourceInUseException:
        # Already there (a kept local state): creating is idempotent, and an index the
        # template gained since is added.
        _add_missing_indexes(ddb, name, props)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        with contextlib.suppress(ClientError):  # some emulators lack TTL; it only expires items
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    pitr = props.get("PointInTimeRecoverySpecification", {})
    if pitr.get("PointInTimeRecoveryEnabled"):
        with contextlib.suppress(ClientError):  # backups mean nothing on an emulator
            ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
    return str(name)


def _add_missing_indexes(ddb: Any, name: str, props: dict[str, Any]) -> None:
    table = ddb.describe_table(TableName=name)["Table"]
    have = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    for index in props.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in have:
            continue
        keys = {key["AttributeName"] for key in index["KeySchema"]}
        ddb.update_table(
            TableName=name,
            AttributeDefinitions=[
                a for a in props["AttributeDefinitions"] if a["AttributeName"] in keys
            ],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )


def create_schedule_group(scheduler: Any, name: str) -> str:
    """An EventBridge Scheduler schedule group (kept if it exists)."""
    try:
        scheduler.get_schedule_group(Name=name)
        return name  # asked first: moto's create replaces a group, schedules and all
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    try:
        scheduler.create_schedule_group(Name=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConflictException":
            raise
    return name


_QUEUE_ATTRIBUTES = {
    "VisibilityTimeout": "VisibilityTimeout",
    "MessageRetentionPeriod": "MessageRetentionPeriod",
    "DelaySeconds": "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "MaximumMessageSize": "MaximumMessageSize",
    "SqsManagedSseEnabled": "SqsManagedSseEnabled",
}


def create_queue(sqs: Any, props: dict[str, Any]) -> tuple[str, str]:
    attributes = {
        attr: str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        for key, attr in _QUEUE_ATTRIBUTES.items()
        if key in props
    }
    if "RedrivePolicy" in props:
        policy = props["RedrivePolicy"]
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": policy["deadLetterTargetArn"],
                "maxReceiveCount": str(policy["maxReceiveCount"]),
            }
        )
    url = sqs.create_queue(QueueName=props["QueueName"])["QueueUrl"]
    if attributes:  # also on an existing queue: the template may have changed
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return str(url), str(arn)


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(days)}
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}
    return out


def create_bucket(s3: Any, props: dict[str, Any], region: str) -> str:
    """The bucket with its encryption, public access block, versioning and lifecycle. Not its
    TLS-only bucket policy (a separate resource): emulators listen on plain HTTP."""
    name = str(props["BucketName"])
    args: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with contextlib.suppress(
        s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists
    ):
        s3.create_bucket(**args)
    settings: list[tuple[str, dict[str, Any]]] = []
    if "BucketEncryption" in props:
        # CloudFormation's ServerSideEncryptionByDefault is the API's Apply... (same fields).
        rules = [
            {("Apply" + k if k == "ServerSideEncryptionByDefault" else k): v for k, v in r.items()}
            for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        settings.append(
            ("put_bucket_encryption", {"ServerSideEncryptionConfiguration": {"Rules": rules}})
        )
    if "PublicAccessBlockConfiguration" in props:
        block = props["PublicAccessBlockConfiguration"]
        settings.append(("put_public_access_block", {"PublicAccessBlockConfiguration": block}))
    if "OwnershipControls" in props:
        controls = props["OwnershipControls"]
        settings.append(("put_bucket_ownership_controls", {"OwnershipControls": controls}))
    if "VersioningConfiguration" in props:
        status = props["VersioningConfiguration"]["Status"]
        settings.append(("put_bucket_versioning", {"VersioningConfiguration": {"Status": status}}))
    if "LifecycleConfiguration" in props:
        rules = [_lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]
        settings.append(
            ("put_bucket_lifecycle_configuration", {"LifecycleConfiguration": {"Rules": rules}})
        )
    for method, kwargs in settings:
        # An emulator without one of these still serves objects; the code never relies on them.
        with contextlib.suppress(ClientError):
            getattr(s3, method)(Bucket=name, **kwargs)
    return name


def create_state_machine(sfn: Any, props: dict[str, Any], name: str, role_arn: str) -> str:
    """A Step Functions state machine from its resolved properties (``Definition`` with its
    ``DefinitionSubstitutions`` applied, as CloudFormation does); returns its ARN."""
    definition = json.dumps(props["Definition"])
    for key, value in (props.get("DefinitionSubstitutions") or {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                arn = str(machine["stateMachineArn"])
                sfn.update_state_machine(stateMachineArn=arn, definition=definition)
                return arn
    created = sfn.create_state_machine(
        name=name,
        definition=definition,
        roleArn=role_arn,
        type=props.get("StateMachineType", "STANDARD"),
    )
    return str(created["stateMachineArn"])
