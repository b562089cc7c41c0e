"""A fanned-out job whose group is too long for a Lambda invocation, on moto's Step Functions
and ECS: the job still fans out, that group runs as a Fargate task (started by the consumer
that takes its message, with the task's entry point run here as the task would run it) and
the others on Lambda invocations; the outputs equal a one-worker run's, the record says where
each group ran; a failing or cancelled Fargate group ends the job as a Lambda group would."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs.consumer import handler as consumer_handler
from kedro_jobs.consumer import task as task_module
from kedro_jobs.consumer.segments import node_stats_key
from kedro_jobs.core.compute import EcsTaskLauncher
from kedro_jobs.core.models import Job
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs, GroupJobs
from kedro_jobs_local.counting_project import executions
from kedro_jobs_local.moto_server import MotoServer
from tests.support.fanout_project import write_fanout_project

from .conftest import Aws, Ecs, Invoke, completed_groups, drain, keys, staged_groups

pytestmark = pytest.mark.integration

BRANCH_NODES = ["prep_a", "fit_a", "prep_b", "fit_b", "prep_c", "fit_c", "report"]
RESULTS = {"summary": {"total": 9.0, "branches": 3}}


@pytest.fixture(scope="module")
def fanout_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fanout_project(tmp_path_factory.mktemp("fanout") / "p")


@pytest.fixture
def ecs(
    invoke: Invoke,
    moto_server: MotoServer,
    fanout_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_functions: Callable[[], None],
) -> Ecs:
    """A deployment offering Fargate (a moto ECS cluster, as the template sets it) whose
    consumer runs the fan-out project, fanning out whatever the shape allows."""
    cluster = Ecs(moto_server.endpoint_url)
    for key, value in cluster.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(fanout_project))
    monkeypatch.setenv("FAN_OUT_MIN_GROUP_SECONDS", "0")
    fresh_functions()
    return cluster


def timed(aws: Aws, pipeline: str, **seconds: float) -> None:
    """The pipeline's past node durations, as a run before left them (fit_b: ``seconds``)."""
    known = dict.fromkeys(BRANCH_NODES, 0.01) | seconds
    aws.s3.put_object(
        Bucket=aws.resources.bucket, Key=node_stats_key(pipeline), Body=json.dumps(known)
    )


def submit(store: ApiJobs, pipeline: str, **options: Any) -> tuple[Job, str]:
    job = store.create(Job.new(pipeline_name=pipeline, parameters={}, options=options, user_id="u"))
    return job, job.to_message().model_dump_json(exclude_none=True)


class Tasks:
    """The tasks the consumers asked ECS for, each run once by its own entry point with the
    command RunTask was given (what the task definition's container runs)."""

    def __init__(self, ecs: Ecs, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ecs = ecs
        self.monkeypatch = monkeypatch
        self.exits: dict[str, int] = {}  # task ARN -> exit status
        self.commands: dict[str, list[str]] = {}

    def run_new(self) -> None:
        for task in self.ecs.tasks():
            arn = task["taskArn"]
            if arn in self.exits:
                continue
            [override] = task["overrides"]["containerOverrides"]
            self.commands[arn] = override["command"]
            self.monkeypatch.setenv(task_module.TASK_ID_ENV, arn)
            self.exits[arn] = task_module.main(override["command"])


def until_a_task_starts(ecs: Ecs, invoke: Invoke, aws: Aws) -> None:
    """Deliver the first level's messages one at a time until the long group's has started
    its task (the others run here)."""
    for _ in range(10):
        if ecs.tasks():
            return
        for message in aws.from_execution(max_number=1):
            aws.sqs.delete_message(
                QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
            assert invoke(message["Body"]) == {"batchItemFailures": []}


def read(aws: Aws, key: str) -> bytes:
    body: bytes = aws.s3.get_object(Bucket=aws.resources.bucket, Key=key)["Body"].read()
    return body


def test_a_group_known_to_be_long_runs_on_fargate_and_the_others_on_lambda(
    ecs: Ecs, invoke: Invoke, aws: Aws, store: ApiJobs, record: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    timed(aws, "branches", fit_b=1000.0)  # far more than an invocation (30 s here)
    job, body = submit(store, "branches")
    assert invoke(body) == {"batchItemFailures": []}
    started = store.get(job.id)
    assert started is not None and started.fan_out is not None  # fans out all the same
    long = next(g for g in started.fan_out["groups"] if "fit_b" in g["nodes"])
    assert long["compute"] == "fargate"
    assert all("compute" not in g for g in started.fan_out["groups"] if g is not long)
    assert started.groups is not None and started.groups[long["id"]].compute == "fargate"

    tasks = Tasks(ecs, monkeypatch)
    done = drain(invoke, aws, store, job.id, each_round=tasks.run_new)

    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.results == RESULTS
    assert executions(record) == dict.fromkeys(BRANCH_NODES, 1)  # each node once
    # One task, for the long group only: its command names the group and the consumer's
    # claim, never the execution's task token (that stays on the record).
    [(arn, command)] = tasks.commands.items()
    assert tasks.exits[arn] == task_module.EXIT_CODES["completed"]
    assert command[:3] == [job.id, "--group", long["id"]]
    assert command[3] == "--claim" and command[4].startswith("dispatch:fargate/")
    [described] = ecs.tasks()
    assert described["startedBy"] == f"kedro-jobs/{job.id}/{long['id']}"
    assert done.groups is not None
    where = {gid: (g.compute, g.status) for gid, g in done.groups.items()}
    assert where == {
        gid: ("fargate" if gid == long["id"] else "lambda", "completed") for gid in done.groups
    }
    assert (done.groups[long["id"]].worker or "").startswith(arn)  # the task ran it
    assert done.groups[long["id"]].runs == 1
    shown = done.model_dump(mode="json")["groups"][long["id"]]
    assert shown["compute"] == "fargate" and "token" not in shown
    # Its nodes are on the job's timeline with the task as their worker.
    assert {n.name for n in done.nodes or [] if n.group == long["id"]} == set(long["nodes"])
    assert not keys(aws, f"data/.kedro-jobs/groups/{job.id}")  # no staging left
    fanned_table = read(aws, "data/data/08_reporting/table.csv")

    aws.s3.delete_object(Bucket=aws.resources.bucket, Key="data/data/08_reporting/table.csv")
    single, single_body = submit(store, "branches", fan_out=False)
    assert invoke(single_body) == {"batchItemFailures": []}
    alone = store.get(single.id)
    assert alone is not None and alone.status is JobStatus.COMPLETED
    assert alone.results == done.results
    assert sorted(o.name for o in alone.outputs or []) == sorted(o.name for o in done.outputs or [])
    assert read(aws, "data/data/08_reporting/table.csv") == fanned_table


def test_without_fargate_a_job_with_a_long_group_runs_on_one_worker(
    invoke: Invoke, aws: Aws, store: ApiJobs, fanout_project: Path,
    monkeypatch: pytest.MonkeyPatch, fresh_functions: Callable[[], None],
) -> None:  # fmt: skip
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(fanout_project))
    monkeypatch.setenv("FAN_OUT_MIN_GROUP_SECONDS", "0")
    monkeypatch.setenv("FARGATE_CLUSTER", "")
    fresh_functions()
    timed(aws, "branches", fit_b=1000.0)
    job, body = submit(store, "branches")
    assert invoke(body) == {"batchItemFailures": []}
    ran = store.get(job.id)
    assert ran is not None and ran.fan_out is None and ran.groups is None  # one worker


def test_a_failing_fargate_group_fails_the_job_naming_its_node(
    ecs: Ecs, invoke: Invoke, aws: Aws, store: ApiJobs, record: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    timed(aws, "failing", fit_b=1000.0)
    job, body = submit(store, "failing")
    assert invoke(body) == {"batchItemFailures": []}
    tasks = Tasks(ecs, monkeypatch)
    done = drain(invoke, aws, store, job.id, each_round=tasks.run_new)
    assert done.status is JobStatus.FAILED
    assert done.error_message == "ValueError: branch b does not fit (node: fit_b)"
    assert list(tasks.exits.values()) == [task_module.EXIT_CODES["failed"]]
    assert done.groups is not None
    [failed] = [g for g in done.groups.values() if g.status == "failed"]
    assert failed.compute == "fargate"
    assert "report" not in executions(record)  # the join never ran
    assert not keys(aws, "data/data/")  # nothing committed
    # Only the hand-overs of the groups that completed are kept, for a rerun from failure.
    assert staged_groups(aws, job.id) == completed_groups(done)


def test_a_job_cancelled_before_its_fargate_task_starts_runs_no_node_of_it(
    ecs: Ecs, invoke: Invoke, aws: Aws, store: ApiJobs, record: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    timed(aws, "branches", fit_b=1000.0)
    job, body = submit(store, "branches")
    assert invoke(body) == {"batchItemFailures": []}
    until_a_task_starts(ecs, invoke, aws)
    assert len(ecs.tasks()) == 1
    store.request_cancel(job.id, "u")
    tasks = Tasks(ecs, monkeypatch)
    done = drain(
        invoke, aws, store, job.id, each_round=tasks.run_new
    )  # the task starts after the cancel
    assert done.status is JobStatus.CANCELLED
    assert list(tasks.exits.values()) == [task_module.NOT_RUN]
    assert "prep_b" not in executions(record) and "report" not in executions(record)
    assert done.groups is not None
    long = next(g for g in (done.fan_out or {})["groups"] if "fit_b" in g["nodes"])
    assert (done.groups[long["id"]].compute, done.groups[long["id"]].status) == (
        "fargate",
        "cancelled",
    )
    assert not keys(aws, "data/data/")
    assert staged_groups(aws, job.id) == completed_groups(done)


def test_a_dead_fargate_task_has_its_group_taken_over_by_a_new_task(
    ecs: Ecs, invoke: Invoke, aws: Aws, store: ApiJobs, group_jobs: GroupJobs, record: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    timed(aws, "branches", fit_b=1000.0)
    job, body = submit(store, "branches")
    assert invoke(body) == {"batchItemFailures": []}
    until_a_task_starts(ecs, invoke, aws)
    [first] = ecs.tasks()
    [override] = first["overrides"]["containerOverrides"]
    group, claim = override["command"][2], override["command"][4]
    # The task took the group over from the consumer's claim and died: its lease ran out.
    taken = group_jobs.pass_group(job.id, group, worker=claim, to="dead-task/1", lease_seconds=-1.0)
    assert taken.job is not None
    # The next look at the job (a sibling's heartbeat, or the sweeper's delivery) sends the
    # group's message again, and the consumer that takes it asks for a new task.
    fan_out = consumer_handler.consumer().fan_out
    assert fan_out is not None
    fan_out.take_over_dead_groups(taken.job)
    tasks = Tasks(ecs, monkeypatch)
    tasks.exits[first["taskArn"]] = -9  # it died: never run again
    done = drain(invoke, aws, store, job.id, each_round=tasks.run_new)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert len(tasks.commands) == 1 and next(iter(tasks.exits.values())) == -9
    [(arn, command)] = tasks.commands.items()
    assert command[4] != claim  # a claim of its own
    assert done.groups is not None
    entry = done.groups[group]
    assert (entry.compute, entry.runs) == ("fargate", 2)
    assert (entry.worker or "").startswith(arn)
    assert done.results == RESULTS


def test_a_group_that_outlives_its_invocation_goes_on_as_a_fargate_task(
    ecs: Ecs, invoke: Invoke, aws: Aws, store: ApiJobs, record: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Never timed (a first run): the branches' groups run on Lambda invocations with a
    second to run in, and their first nodes take two. Each is stopped at its deadline and
    moved to a Fargate task, run there from its first node with the same task token, instead
    of failing the job; the join runs on Lambda after them. The next job plans them there."""
    invocation = get_settings().timeout_margin_seconds + 1.0
    job = store.create(Job.new(pipeline_name="branches", parameters={"prep_pause": 2.0},
                               options={}, user_id="u"))  # fmt: skip
    assert invoke(job.to_message().model_dump_json(exclude_none=True), timeout=invocation) == {
        "batchItemFailures": []
    }
    for _ in range(20):  # the first level's three groups, each on a short invocation
        if len(ecs.tasks()) == 3:
            break
        for message in aws.from_execution():
            aws.sqs.delete_message(
                QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
            assert invoke(message["Body"], timeout=invocation) == {"batchItemFailures": []}
    assert len(ecs.tasks()) == 3
    moving = store.get(job.id)
    assert moving is not None and moving.status is JobStatus.RUNNING and moving.groups
    first_level = (moving.fan_out or {})["levels"][0]
    assert {moving.groups[g].compute for g in first_level} == {"fargate"}

    tasks = Tasks(ecs, monkeypatch)
    done = drain(invoke, aws, store, job.id, each_round=tasks.run_new)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.results == RESULTS
    assert set(tasks.exits.values()) == {task_module.EXIT_CODES["completed"]}
    assert done.groups is not None
    for group_id in first_level:
        entry = done.groups[group_id]
        assert (entry.compute, entry.runs, entry.status) == ("fargate", 2, "completed")
    [join] = (done.fan_out or {})["levels"][1]
    assert done.groups[join].compute == "lambda"
    # Each branch's first node ran twice (stopped on Lambda, again on Fargate), the rest once.
    ran = executions(record)
    assert {n: ran[n] for n in BRANCH_NODES} == {
        n: 2 if n.startswith("prep_") else 1 for n in BRANCH_NODES
    }
    assert not keys(aws, f"data/.kedro-jobs/groups/{job.id}")

    # Their time was noted: the pipeline's next job plans them on Fargate from the start.
    again = store.create(Job.new(pipeline_name="branches", parameters={}, options={},
                                 user_id="u"))  # fmt: skip
    body = again.to_message().model_dump_json(exclude_none=True)
    assert invoke(body, timeout=invocation) == {"batchItemFailures": []}
    planned = store.get(again.id)
    assert planned is not None and planned.fan_out is not None
    assert [g.get("compute") for g in planned.fan_out["groups"]] == ["fargate"] * 3 + [None]


def test_a_group_whose_task_could_not_start_asks_for_one_again(
    ecs: Ecs, invoke: Invoke, aws: Aws, store: ApiJobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    timed(aws, "branches", fit_b=1000.0)
    job, body = submit(store, "branches")
    assert invoke(body) == {"batchItemFailures": []}
    started = store.get(job.id)
    assert started is not None and started.fan_out is not None
    long = next(g["id"] for g in started.fan_out["groups"] if "fit_b" in g["nodes"])
    launchers = consumer_handler.consumer().dispatcher.launchers
    good = launchers["fargate"]
    # RunTask fails (here: no such cluster; on AWS, no capacity or throttling).
    launchers["fargate"] = EcsTaskLauncher(
        get_settings().model_copy(update={"fargate_cluster": "no-such-cluster"})
    )
    failed = False
    for _ in range(10):
        resp = aws.sqs.receive_message(
            QueueUrl=aws.resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in resp.get("Messages", []):
            answer = invoke(message["Body"])
            if json.loads(message["Body"]).get("group") == long:
                # Reported failed: SQS delivers it again after a short backoff (which the
                # consumer sets with the record's receipt handle; this event's is made up).
                assert [f["itemIdentifier"] for f in answer["batchItemFailures"]]
                aws.sqs.change_message_visibility(
                    QueueUrl=aws.resources.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
                failed = True
            else:
                assert answer == {"batchItemFailures": []}
                aws.sqs.delete_message(
                    QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        if failed:
            break
    assert failed and ecs.tasks() == []
    waiting = store.get(job.id)
    assert waiting is not None and waiting.groups is not None
    entry = waiting.groups[long]
    # Its claim let go at once (its lease over), so the next delivery claims it again.
    assert (entry.status, entry.compute) == ("running", "fargate")
    assert (entry.lease or 0.0) <= time.time()

    launchers["fargate"] = good
    tasks = Tasks(ecs, monkeypatch)
    done = drain(invoke, aws, store, job.id, each_round=tasks.run_new)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert len(tasks.exits) == 1 and set(tasks.exits.values()) == {0}
    assert done.groups is not None and done.groups[long].runs == 2
    assert done.results == RESULTS
