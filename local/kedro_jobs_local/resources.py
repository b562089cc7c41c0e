"""Create template.yaml's tables, queues and bucket on any endpoint (moto, LocalStack).

One source of truth: tests, `make dev` and the LocalStack init script all create their
resources here, from the template, so they cannot drift from what `sam deploy` creates.
Runs standalone with only boto3 and PyYAML (LocalStack's own Python has both):

    python local/kedro_jobs_local/resources.py --endpoint-url http://127.0.0.1:4566
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

DEFAULT_STACK = "kedro-jobs"
DEFAULT_ACCOUNT = "123456789012"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
NO_VALUE: Any = object()  # what AWS::NoValue resolves to: the caller drops the key


# -- the template ---------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """PyYAML loader that reads CloudFormation's short tags (!Ref, !Sub, ...) as the long
    form ({"Ref": ...}, {"Fn::Sub": ...})."""


def _tag(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _short in ("Ref", "Condition"):
    _CfnLoader.add_constructor(f"!{_short}", _tag(_short))
for _short in (
    "Sub", "GetAtt", "Join", "If", "Equals", "Not", "And", "Or", "Select", "Split",
    "FindInMap", "ImportValue", "Base64", "GetAZs", "Cidr",
):  # fmt: skip
    _CfnLoader.add_constructor(f"!{_short}", _tag(f"Fn::{_short}"))


def load_template(path: Path | None = None) -> dict[str, Any]:
    with (path or TEMPLATE).open() as handle:
        data: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - safe subclass
    return data


class _Resolver:
    """Just enough of CloudFormation's intrinsic functions for the template's resources."""

    def __init__(
        self, template: dict[str, Any], stack: str, region: str, overrides: dict[str, str]
    ) -> None:
        self.template = template
        self.refs: dict[str, Any] = {
            "AWS::StackName": stack,
            "AWS::Region": region,
            "AWS::AccountId": DEFAULT_ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        unknown = set(overrides) - set(template.get("Parameters", {}))
        if unknown:
            raise ValueError(f"unknown template parameters: {sorted(unknown)}")
        for name, spec in template.get("Parameters", {}).items():
            value = str(overrides.get(name, spec.get("Default", "")))
            _check_parameter(name, value, spec)
            self.refs[name] = value
        self.attrs: dict[tuple[str, str], Any] = {}

    def condition(self, name: str) -> bool:
        return bool(self(self.template.get("Conditions", {})[name]))

    def check_rules(self) -> None:
        """The template's Rules, as CloudFormation checks them before it creates anything."""
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self(rule["RuleCondition"]):
                continue
            for assertion in rule.get("Assertions", []):
                if not self(assertion["Assert"]):
                    reason = assertion.get("AssertDescription", "")
                    raise ValueError(f"template rule {name} fails: {reason}")

    def __call__(self, value: Any) -> Any:
        # AWS::NoValue removes the key or list item it is the value of, as in CloudFormation.
        if isinstance(value, list):
            return [r for r in map(self, value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        key = next(iter(value), "")
        if len(value) != 1 or not (key in ("Ref", "Condition") or key.startswith("Fn::")):
            return {k: r for k, v in value.items() if (r := self(v)) is not NO_VALUE}
        arg = value[key]
        if key == "Ref":
            return self.refs[arg]
        if key == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.attrs[(logical, attr)]
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
            return _substitute(text, lambda name: extra[name] if name in extra else self._sub(name))
        if key == "Fn::Join":
            return str(arg[0]).join(str(self(v)) for v in self(arg[1]))
        if key == "Fn::Split":
            return str(self(arg[1])).split(arg[0])
        if key == "Fn::Select":
            return self(arg[1])[int(self(arg[0]))]
        if key == "Fn::If":
            return self(arg[1] if self.condition(arg[0]) else arg[2])
        if key == "Fn::And":
            return all(self(v) for v in arg)
        if key == "Fn::Or":
            return any(self(v) for v in arg)
        if key == "Fn::Equals":
            return str(self(arg[0])) == str(self(arg[1]))
        if key == "Fn::Not":
            return not self(arg[0])
        if key == "Fn::FindInMap":
            mapping, top, second = (self(a) for a in arg)
            return self.template["Mappings"][mapping][str(top)][second]
        if key == "Condition":
            return self.condition(arg)
        return {key: self(arg)}  # not one of these: left as it is

    def _sub(self, name: str) -> Any:
        if "." in name:
            logical, attr = name.split(".", 1)
            return self.attrs[(logical, attr)]
        return self.refs[name]


def resolve_value(
    value: Any,
    *,
    template: dict[str, Any] | None = None,
    parameter_overrides: dict[str, str] | None = None,
    stack_name: str = DEFAULT_STACK,
    region: str = "us-east-1",
) -> Any:
    """A template value as CloudFormation would deploy it with these parameters (tests use it
    to check conditional parts). Resource references are not known here: KeyError."""
    template = template if template is not None else load_template()
    resolver = _Resolver(template, stack_name, region, dict(parameter_overrides or {}))
    resolver.check_rules()
    return resolver(value)


def _check_parameter(name: str, value: str, spec: dict[str, Any]) -> None:
    """What CloudFormation checks of a parameter value, so a bad override fails here too."""
    allowed = [str(v) for v in spec.get("AllowedValues", [])]
    if allowed and value not in allowed:
        raise ValueError(f"parameter {name}={value} is not one of {allowed}")
    if spec.get("Type") == "Number":
        number = float(value)
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise ValueError(f"parameter {name}={value} is below {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise ValueError(f"parameter {name}={value} is above {spec['MaxValue']}")
    pattern = spec.get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, value):
        raise ValueError(f"parameter {name}={value} does not match {pattern}")


def _substitute(text: str, lookup: Any) -> str:
    out, i = [], 0
    while i < len(text):
        start = text.find("${", i)
        if start < 0:
            out.append(text[i:])
            break
        end = text.index("}", start)
        out.append(text[i:start])
        out.append(str(lookup(text[start + 2 : end])))
        i = end + 1
    return "".join(out)


# -- the resources --------------------------------------------------------------------------


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
        return {name: str(value) for name, value in resolved.items() if value is not NO_VALUE}


def _client(service: str, session: boto3.Session | None, endpoint_url: str | None) -> Any:
    if session is None:
        return _default_client(service, endpoint_url)
    return session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]


@functools.cache
def _default_client(service: str, endpoint_url: str | None) -> Any:
    # Making a client costs ~0.1 s; tests reset the resources before every test.
    return boto3.Session().client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]


def _create_table(ddb: Any, props: dict[str, Any]) -> str:
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
        pass  # already there: creating is idempotent
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


_QUEUE_ATTRIBUTES = {
    "VisibilityTimeout": "VisibilityTimeout",
    "MessageRetentionPeriod": "MessageRetentionPeriod",
    "DelaySeconds": "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "MaximumMessageSize": "MaximumMessageSize",
    "SqsManagedSseEnabled": "SqsManagedSseEnabled",
}


def _create_queue(sqs: Any, props: dict[str, Any]) -> tuple[str, str]:
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
    return out


def _create_bucket(s3: Any, props: dict[str, Any], region: str) -> str:
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


def _create_queues(sqs: Any, resources: dict[str, Any], resolve: _Resolver) -> None:
    # Queues without a redrive policy first: the others point at their ARNs.
    queues = sorted(
        (name for name, spec in resources.items() if spec["Type"] == "AWS::SQS::Queue"),
        key=lambda n: "RedrivePolicy" in resources[n]["Properties"],
    )
    for name in queues:
        url, arn = _create_queue(sqs, resolve(resources[name]["Properties"]))
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
    resolve = _Resolver(template, stack_name, region, dict(parameter_overrides or {}))
    resolve.check_rules()
    resources = template["Resources"]

    def of_type(kind: str) -> list[str]:
        return [name for name, spec in resources.items() if spec["Type"] == kind]

    _create_queues(sqs, resources, resolve)
    for name in of_type("AWS::DynamoDB::Table"):
        table = _create_table(ddb, resolve(resources[name]["Properties"]))
        resolve.refs[name] = table
        resolve.attrs[(name, "Arn")] = f"arn:aws:dynamodb:{region}:{DEFAULT_ACCOUNT}:table/{table}"
    for name in of_type("AWS::S3::Bucket"):
        bucket = _create_bucket(s3, resolve(resources[name]["Properties"]), region)
        resolve.refs[name] = bucket
        resolve.attrs[(name, "Arn")] = f"arn:aws:s3:::{bucket}"

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
    """Empty the table, queues and bucket (between tests), keeping the resources."""
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
