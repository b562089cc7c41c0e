"""Create template.yaml's tables, queues and bucket on any endpoint (moto, LocalStack).

One source of truth: tests, `make dev` and the LocalStack init script all create their
resources here, from the template, so they cannot drift from what `sam deploy` creates.
Runs standalone with only boto3 and PyYAML (LocalStack's own Python has both):

    python local/kedro_jobs_local/resources.py --endpoint-url http://127.0.0.1:4566
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

if __package__:
    from kedro_jobs_local.provision import (
        create_bucket,
        create_queue,
        create_schedule_group,
        create_state_machine,
        create_table,
    )
    from kedro_jobs_local.template import (
        DEFAULT_ACCOUNT,
        DEFAULT_STACK,
        NO_VALUE,
        TEMPLATE,
        Resolver,
        load_template,
    )
else:  # run as a script (LocalStack's init hook): its own folder is on sys.path
    from provision import (
        create_bucket,
        create_queue,
        create_schedule_group,
        create_state_machine,
        create_table,
    )
    from template import DEFAULT_ACCOUNT, DEFAULT_STACK, NO_VALUE, TEMPLATE, Resolver, load_template


@dataclass
class LocalResources:
    table_name: str
    idempotency_table_name: str
    queue_url: str
    dlq_url: str
    bucket: str
    template: dict[str, Any] = field(repr=False, default_factory=dict)
    resolver: Any = field(repr=False, default=None)

    def function_env(self, logical_id: str = "ConsumerFunction") -> dict[str, str]:
        """The environment the template gives a function, resolved to these resources."""
        functions = {
            name
            for name, spec in self.template["Resources"].items()
            if spec["Type"] == "AWS::Serverless::Function"
        }
        if logical_id not in functions:
            raise KeyError(f"{logical_id} is not a function of the template: {sorted(functions)}")
        variables = dict(
            self.template.get("Globals", {})
            .get("Function", {})
            .get("Environment", {})
            .get("Variables", {})
        )
        spec = self.template["Resources"][logical_id]["Properties"]
        variables.update(spec.get("Environment", {}).get("Variables", {}))
        resolved = {name: self.resolver(value) for name, value in variables.items()}
        return {
            name: _dynamic_references(str(value))
            for name, value in resolved.items()
            if value is not NO_VALUE
        }


_SECRET_REFERENCE = re.compile(r"\{\{resolve:secretsmanager:(.+?)(?::SecretString)?\}\}")


def _dynamic_references(value: str) -> str:
    """CloudFormation's ``{{resolve:secretsmanager:ARN:SecretString}}``, as deployed: here a
    value derived from the secret's ARN, the same for every process of one local stack (a
    local key signs local checkpoints; it is no secret, and needs no Secrets Manager)."""
    return _SECRET_REFERENCE.sub(
        lambda found: hashlib.sha256(f"kedro-jobs local {found.group(1)}".encode()).hexdigest(),
        value,
    )


def _client(service: str, session: boto3.Session | None, endpoint_url: str | None) -> Any:
    if session is None:
        return _default_client(service, endpoint_url)
    return session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]


@functools.cache
def _default_client(service: str, endpoint_url: str | None) -> Any:
    # Making a client costs ~0.1 s; tests reset the resources before every test.
    return _default_session().client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]


@functools.cache
def _default_session() -> boto3.Session:
    # One for all: a session keeps the service models and endpoint rules it has read.
    return boto3.Session()


def _create_queues(sqs: Any, resources: dict[str, Any], resolve: Resolver) -> None:
    # Queues without a redrive policy first: the others point at their ARNs.
    queues = sorted(
        (name for name, spec in resources.items() if spec["Type"] == "AWS::SQS::Queue"),
        key=lambda n: "RedrivePolicy" in resources[n]["Properties"],
    )
    for name in queues:
        url, arn = create_queue(sqs, resolve(resources[name]["Properties"]))
        resolve.refs[name] = url
        resolve.attrs[(name, "Arn")] = arn
        resolve.attrs[(name, "QueueName")] = arn.rsplit(":", 1)[-1]
        resolve.attrs[(name, "QueueUrl")] = url


def create_resources(
    *,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    stack_name: str = DEFAULT_STACK,
    parameter_overrides: dict[str, str] | None = None,
    template: dict[str, Any] | None = None,
) -> LocalResources:
    """Create (or reuse) every table, queue and bucket of the template; idempotent."""
    template = template or load_template()
    ddb = _client("dynamodb", session, endpoint_url)
    sqs = _client("sqs", session, endpoint_url)
    s3 = _client("s3", session, endpoint_url)
    region = str(ddb.meta.region_name)
    resolve = Resolver(template, stack_name, region, dict(parameter_overrides or {}))
    resolve.check_rules()
    resources = template["Resources"]

    def of_type(kind: str) -> list[str]:
        return [name for name, spec in resources.items() if spec["Type"] == kind]

    _create_queues(sqs, resources, resolve)
    for name in of_type("AWS::DynamoDB::Table"):
        table = create_table(ddb, resolve(resources[name]["Properties"]))
        resolve.refs[name] = table
        resolve.attrs[(name, "Arn")] = f"arn:aws:dynamodb:{region}:{DEFAULT_ACCOUNT}:table/{table}"
    for name in of_type("AWS::S3::Bucket"):
        bucket = create_bucket(s3, resolve(resources[name]["Properties"]), region)
        resolve.refs[name] = bucket
        resolve.attrs[(name, "Arn")] = f"arn:aws:s3:::{bucket}"
    for name in of_type("AWS::SecretsManager::Secret"):
        # Only read through dynamic references, resolved locally (function_env).
        arn = f"arn:aws:secretsmanager:{region}:{DEFAULT_ACCOUNT}:secret:{stack_name}-{name}"
        resolve.refs[name] = arn

    for name in of_type("AWS::Scheduler::ScheduleGroup"):
        group = resolve(resources[name]["Properties"])["Name"]
        create_schedule_group(_client("scheduler", session, endpoint_url), group)
        resolve.refs[name] = group
    for name in of_type("AWS::IAM::Role"):
        # Nothing local checks roles: the ARN the template's functions are given is enough.
        resolve.attrs[(name, "Arn")] = f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/{stack_name}-{name}"
    sfn = _client("stepfunctions", session, endpoint_url)
    for name in of_type("AWS::StepFunctions::StateMachine"):
        props = resolve({k: v for k, v in resources[name]["Properties"].items() if k != "RoleArn"})
        # IAM is not emulated: the role's name is what the state machine is created with.
        role = f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/{stack_name}-{name}Role"
        resolve.refs[name] = create_state_machine(sfn, props, f"{stack_name}-{name}", role)

    return LocalResources(
        table_name=resolve.refs["JobsTable"],
        idempotency_table_name=resolve.refs["IdempotencyTable"],
        queue_url=resolve.refs["JobsQueue"],
        dlq_url=resolve.refs["JobsDeadLetterQueue"],
        bucket=resolve.refs["ArtifactsBucket"],
        template=template,
        resolver=resolve,
    )


def reset_resources(
    res: LocalResources, *, session: boto3.Session | None = None, endpoint_url: str | None = None
) -> None:
    """Empty the table, queues, bucket and schedule group (between tests), keeping them."""
    ddb = _client("dynamodb", session, endpoint_url)
    sqs = _client("sqs", session, endpoint_url)
    s3 = _client("s3", session, endpoint_url)
    for table in (res.table_name, res.idempotency_table_name):
        for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="id"):
            for item in page["Items"]:
                ddb.delete_item(TableName=table, Key={"id": item["id"]})
    # Delete and re-create rather than purge: purges are rate-limited and miss nothing
    # in flight this way.
    for url in (res.queue_url, res.dlq_url):
        sqs.delete_queue(QueueUrl=url)
    _create_queues(sqs, res.template["Resources"], res.resolver)
    group = res.resolver.refs.get("ScheduleGroup") if res.resolver else None
    if group:
        scheduler = _client("scheduler", session, endpoint_url)
        for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group):
            for schedule in page["Schedules"]:
                scheduler.delete_schedule(Name=schedule["Name"], GroupName=group)
    # Every version and delete marker: the template's bucket is versioned.
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=res.bucket):
        keys = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if keys:
            s3.delete_objects(Bucket=res.bucket, Delete={"Objects": keys, "Quiet": True})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", help="moto / LocalStack endpoint (default: boto3's)")
    parser.add_argument("--stack-name", default=DEFAULT_STACK)
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument(
        "--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE",
        help="template parameters, as for sam deploy",
    )  # fmt: skip
    parser.add_argument(
        "--print-env", metavar="FUNCTION", nargs="?", const="ConsumerFunction",
        help="print `export VAR=value` lines of that function's environment",
    )  # fmt: skip
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.parameter_overrides)
    res = create_resources(
        endpoint_url=args.endpoint_url,
        stack_name=args.stack_name,
        parameter_overrides=overrides,
        template=load_template(args.template),
    )
    if args.print_env:
        for key, value in sorted(res.function_env(args.print_env).items()):
            sys.stdout.write(f"export {key}={shlex.quote(value)}\n")
    else:
        created = {
            "table": res.table_name,
            "idempotency_table": res.idempotency_table_name,
            "queue_url": res.queue_url,
            "dlq_url": res.dlq_url,
            "bucket": res.bucket,
        }
        sys.stdout.write(json.dumps(created, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
