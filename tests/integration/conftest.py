from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from kedro_jobs.api import handler as api
from kedro_jobs.api.services import Services
from kedro_jobs.consumer import handler as consumer_handler
from kedro_jobs.core.models import Job
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.store import ApiJobs, GroupJobs, RunJobs, ScheduleJobs, SweepJobs
from kedro_jobs_local.counting_project import use_record, write_project
from kedro_jobs_local.lambda_context import LocalContext
from kedro_jobs_local.lambda_events import http_api_event, response_json, rest_api_event, sqs_event
from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.resources import LocalResources


class Aws:
    """Direct boto3 access to the moto server, to check what the code wrote."""

    def __init__(self, endpoint_url: str, resources: LocalResources) -> None:
        self.resources = resources
        self.dynamodb = boto3.client("dynamodb", endpoint_url=endpoint_url)
        self.sqs = boto3.client("sqs", endpoint_url=endpoint_url)
        self.s3 = boto3.client("s3", endpoint_url=endpoint_url)
        self.sfn = boto3.client("stepfunctions", endpoint_url=endpoint_url)

    def items(self) -> list[dict[str, Any]]:
        # A test may Scan; function code never does.
        resp = self.dynamodb.scan(TableName=self.resources.table_name)
        items: list[dict[str, Any]] = resp["Items"]
        return items

    def messages(self, queue_url: str | None = None, max_number: int = 10) -> list[dict[str, Any]]:
        resp = self.sqs.receive_message(
            QueueUrl=queue_url or self.resources.queue_url,
            MaxNumberOfMessages=max_number,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = resp.get("Messages", [])
        return messages

    def from_execution(self, max_number: int = 10, wait: int = 1) -> list[dict[str, Any]]:
        """The fan-out's next messages on the jobs queue, each once its task takes heartbeats.
        moto's execution sends a task's message from its own thread and takes its token a
        moment later; the consumer hands a message it gets before then back to the queue (on
        AWS it comes back), which a test delivering it by hand would take for a failure."""
        resp = self.sqs.receive_message(
            QueueUrl=self.resources.queue_url, MaxNumberOfMessages=max_number, WaitTimeSeconds=wait
        )
        messages: list[dict[str, Any]] = resp.get("Messages", [])
        for message in messages:
            body = json.loads(message["Body"])
            token = body.get("token") if isinstance(body, dict) else None
            for _ in range(50) if token else ():
                try:
                    self.sfn.send_task_heartbeat(taskToken=token)
                    break
                except self.sfn.exceptions.ClientError:
                    time.sleep(0.1)
        return messages


def keys(aws: Aws, prefix: str) -> list[str]:
    resp = aws.s3.list_objects_v2(Bucket=aws.resources.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in resp.get("Contents", []))


def staged_groups(aws: Aws, job_id: str) -> set[str]:
    """The groups of ``job_id`` whose hand-overs are on the data root's staging."""
    return {key.split("/")[4] for key in keys(aws, f"data/.kedro-jobs/groups/{job_id}/")}


def completed_groups(job: Job) -> set[str]:
    return {gid for gid, group in (job.groups or {}).items() if group.status == "completed"}


@pytest.fixture(scope="session")
def _aws(stack: LocalResources, moto_server: MotoServer) -> Aws:
    return Aws(moto_server.endpoint_url, stack)


@pytest.fixture
def aws(clean_stack: LocalResources, _aws: Aws) -> Aws:
    return _aws


# The jobs table as each kind of caller sees it (core/store/roles/): a test takes the role
# whose behaviour it checks, and arranges and reads jobs as the API does (`store`).
@pytest.fixture
def store(aws: Aws) -> ApiJobs:
    return ApiJobs(aws.resources.table_name, dynamodb=aws.dynamodb)


@pytest.fixture
def run_jobs(store: ApiJobs) -> RunJobs:
    return RunJobs.over(store)


@pytest.fixture
def sweep_jobs(store: ApiJobs) -> SweepJobs:
    return SweepJobs.over(store)


@pytest.fixture
def group_jobs(store: ApiJobs) -> GroupJobs:
    return GroupJobs.over(store)


@pytest.fixture
def schedule_jobs(store: ApiJobs) -> ScheduleJobs:
    return ScheduleJobs.over(store)


class Ecs:
    """A cluster and the job task definition on moto, and the RunTask requests sent."""

    def __init__(self, endpoint_url: str) -> None:
        self.ecs = boto3.client("ecs", endpoint_url=endpoint_url)
        ec2 = boto3.client("ec2", endpoint_url=endpoint_url)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        # moto's awsvpc task reads its ENI's DNS name, which it only sets with this on.
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        self.subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"]
            for i in (1, 2)
        ]
        self.security_group = ec2.create_security_group(
            GroupName=f"jobs-{uuid.uuid4().hex[:8]}", Description="jobs", VpcId=vpc
        )["GroupId"]
        self.cluster = f"kedro-jobs-jobs-{uuid.uuid4().hex[:8]}"
        self.cluster_arn = self.ecs.create_cluster(clusterName=self.cluster)["cluster"][
            "clusterArn"
        ]
        self.task_definition = self.ecs.register_task_definition(
            family="kedro-jobs-job",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="1024",
            memory="4096",
            containerDefinitions=[
                {
                    "name": "consumer",
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/consumer:1",
                    "entryPoint": ["python", "-m", "kedro_jobs.consumer.task"],
                    "essential": True,
                    "memory": 4096,  # moto sums the containers' (AWS takes the task's)
                    "cpu": 1024,
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        self.requests: list[dict[str, Any]] = []

    def env(self) -> dict[str, str]:
        return {
            "FARGATE_CLUSTER": self.cluster,
            "FARGATE_TASK_DEFINITION": self.task_definition,
            "FARGATE_SUBNETS": ",".join(self.subnets),
            "FARGATE_SECURITY_GROUPS": self.security_group,
            "FARGATE_ASSIGN_PUBLIC_IP": "true",
        }

    def record(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(json.loads(json.dumps(params)))

    def tasks(self) -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster=self.cluster)["taskArns"]
        if not arns:
            return []
        found: list[dict[str, Any]] = self.ecs.describe_tasks(
            cluster=self.cluster, tasks=arns, include=["TAGS"]
        )["tasks"]
        return found


class ApiCall:
    """Invoke the API's Lambda handler with a real API Gateway event: HTTP API v2, or REST
    v1 with ``rest=True``. ``user`` is the JWT `sub` (v2) or the Lambda authorizer's principal
    (v1); ``claims`` replace the JWT's claims; ``authorizer`` replaces the whole authorizer
    context. Returns (status, JSON or text body, lower-cased headers)."""

    def __init__(self) -> None:
        self.configure()

    def configure(self, **settings: Any) -> Services:
        """Serve with these settings changed (e.g. ``auth_required=True``)."""
        services = Services(get_settings().model_copy(update=settings))
        api.app.state.services = services
        return services

    def __call__(
        self,
        method: str,
        path: str,
        *,
        rest: bool = False,
        user: str | None = None,
        claims: dict[str, str] | None = None,
        authorizer: dict[str, Any] | None = None,
        **kw: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        if rest:
            event = rest_api_event(method, path, principal=user, **kw)
        else:
            if user is not None:
                claims = {"sub": user}
            event = http_api_event(method, path, claims=claims, **kw)
        if authorizer is not None:
            event["requestContext"]["authorizer"] = authorizer
        response = api.handler(event, LocalContext(29, "ApiFunction"))
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        body = response_json(response) if "json" in headers.get("content-type", "") else None
        return response["statusCode"], body if body is not None else response.get("body"), headers


@pytest.fixture
def api_call(aws: Aws) -> ApiCall:
    return ApiCall()


# -- the consumer handler over a real Kedro project ----------------------------------------


@pytest.fixture(scope="session")
def kedro_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("project"))


@pytest.fixture
def record(tmp_path: Path) -> Path:
    path = tmp_path / "executions.txt"
    use_record(path)
    return path


Invoke = Callable[..., dict[str, Any]]


def drain(
    invoke: Invoke,
    aws: Aws,
    store: ApiJobs,
    job_id: str,
    *,
    rounds: int = 60,
    timeout: float = 30.0,
    each_round: Callable[[], None] | None = None,
) -> Job:
    """Deliver a fanned-out job's messages (one invocation each, as separate workers would
    take them) until the job ends; ``each_round`` runs after each receive (e.g. the tasks the
    messages started). moto's execution sends them from its own thread: the receive waits up
    to a second for the next."""
    for _ in range(rounds):
        job = store.get(job_id)
        assert job is not None
        if job.status.terminal:
            return job
        for message in aws.from_execution():
            aws.sqs.delete_message(
                QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
            assert invoke(message["Body"], timeout=timeout) == {"batchItemFailures": []}
        if each_round is not None:
            each_round()
    raise AssertionError(f"job {job_id} did not end")


@pytest.fixture(scope="session")
def _bootstrapped() -> dict[tuple[str, ...], Any]:
    """The consumer's Kedro runners, by what they were made from: bootstrapping a project
    costs ~1.2 s, and a runner keeps nothing of a job once it has ended (a warm container runs
    job after job on one), so the tests' fresh containers share them."""
    return {}


@pytest.fixture
def invoke(
    aws: Aws,
    kedro_project: Path,
    record: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_functions: Callable[[], None],
    _bootstrapped: dict[tuple[str, ...], Any],
) -> Invoke:
    """The consumer's Lambda handler, in a fresh container, on the test project: ``invoke(
    *bodies, timeout=30.0, message_ids=None)`` delivers one SQS event with those bodies and
    returns the handler's response (its partial batch failures). The container's Kedro
    project is one bootstrapped before, for the same project and settings, if there was one."""
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(kedro_project))
    fresh_functions()
    make_runner = consumer_handler._make_runner

    def bootstrapped_runner() -> Any:
        settings = get_settings()
        key = (
            os.environ["KEDRO_PROJECT_PATH"],
            settings.isolation,
            settings.jobs_data_root,
            settings.staging_dir,
        )
        if key not in _bootstrapped:
            _bootstrapped[key] = make_runner()  # a project that fails to load is not kept
        return _bootstrapped[key]

    monkeypatch.setattr(consumer_handler, "_make_runner", bootstrapped_runner)

    def run(
        *bodies: str, timeout: float = 30.0, message_ids: list[str] | None = None
    ) -> dict[str, Any]:
        event = sqs_event(*bodies, message_ids=message_ids)
        # The project is bootstrapped before the invocation's clock starts, as make dev's
        # consumers do it (Lambda's init phase): else the first test of a worker to invoke
        # would spend its budget on it, and on a loaded machine run out of time. A project
        # that fails to load fails again in the handler, which is what such a test checks.
        with contextlib.suppress(Exception):
            bootstrapped_runner()
        result: dict[str, Any] = consumer_handler.handler(event, LocalContext(timeout))
        return result

    return run
