"""A job fanned out over workers, through the consumer's Lambda handler and moto's Step
Functions (which runs the template's state machine): the job's delivery starts the execution,
each group's message is run by an invocation of its own, the commit completes the job. The
result equals a one-worker run of the same request; a duplicate delivery starts nothing; a
failing group fails the job naming its node; a cancel ends it, committing nothing."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from kedro_jobs.consumer import handler as consumer_handler
from kedro_jobs.consumer.group_sink import GroupSink
from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.fanout import TASK_HEARTBEAT_SECONDS, Coordinator, FanOutTask, transitions
from kedro_jobs.core.models import Job
from kedro_jobs.core.queue import JobQueue
from kedro_jobs.core.settings import get_settings
from kedro_jobs.core.states import TERMINAL, JobStatus
from kedro_jobs.core.store import ApiJobs, GroupJobs, SweepJobs
from kedro_jobs.core.store.groups import GroupClaimOutcome
from kedro_jobs.sweeper.sweep import Sweeper
from kedro_jobs_local.counting_project import executions
from kedro_jobs_local.lambda_context import LocalContext
from kedro_jobs_local.lambda_events import to_lambda_record
from kedro_jobs_local.provision import create_state_machine
from tests.support.fanout_project import write_fanout_project

from .conftest import ApiCall, Aws, Invoke, completed_groups, drain, keys, staged_groups

BRANCH_NODES = ["prep_a", "fit_a", "prep_b", "fit_b", "prep_c", "fit_c", "report"]


@pytest.fixture(scope="module")
def fanout_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fanout_project(tmp_path_factory.mktemp("fanout") / "p")


@pytest.fixture
def fan_invoke(
    invoke: Invoke,
    fanout_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_functions: Callable[[], None],
) -> Invoke:
    """The consumer handler on the fan-out project, fanning out whatever the shape allows
    (the test project's nodes take milliseconds)."""
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(fanout_project))
    monkeypatch.setenv("FAN_OUT_MIN_GROUP_SECONDS", "0")
    fresh_functions()
    return invoke


@pytest.fixture
def default_invoke(
    invoke: Invoke,
    fanout_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_functions: Callable[[], None],
) -> Invoke:
    """The consumer handler on the fan-out project with the deployment's defaults (groups
    worth a worker from 5 s; no node of the project timed yet)."""
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(fanout_project))
    monkeypatch.delenv("FAN_OUT_MIN_GROUP_SECONDS", raising=False)
    fresh_functions()
    return invoke


@pytest.fixture
def sfn(aws: Aws) -> Any:
    return boto3.client("stepfunctions", endpoint_url=aws.sqs.meta.endpoint_url)


def submit(store: ApiJobs, pipeline: str, **options: Any) -> tuple[Job, str]:
    job = store.create(Job.new(pipeline_name=pipeline, parameters={}, options=options, user_id="u"))
    return job, job.to_message().model_dump_json(exclude_none=True)


def next_message(aws: Aws, *, waits: int = 10) -> dict[str, Any]:
    """The execution's next message (sent from moto's own thread: a busy machine delays it)."""
    for _ in range(waits):
        messages = aws.from_execution(max_number=1)
        if messages:
            return messages[0]
    raise AssertionError("the execution sent no message")


def peek(aws: Aws) -> list[dict[str, Any]]:
    """The bodies of the messages on the queue now, left on it."""
    messages = aws.messages()
    for message in messages:
        aws.sqs.change_message_visibility(
            QueueUrl=aws.resources.queue_url,
            ReceiptHandle=message["ReceiptHandle"],
            VisibilityTimeout=0,
        )
    return [json.loads(m["Body"]) for m in messages]


def read(aws: Aws, key: str) -> bytes:
    body: bytes = aws.s3.get_object(Bucket=aws.resources.bucket, Key=key)["Body"].read()
    return body


def test_a_fanned_out_job_equals_a_one_worker_run(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, sfn: Any, record: Path
) -> None:
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    started = store.get(job.id)
    assert started is not None and started.fan_out is not None
    assert not executions(record)  # the delivery ran no node: it started the execution
    done = drain(fan_invoke, aws, store, job.id)

    assert done.status is JobStatus.COMPLETED, done.error_message
    assert executions(record) == dict.fromkeys(BRANCH_NODES, 1)  # each node once
    assert done.groups is not None and len(done.groups) == 4
    assert {g.status for g in done.groups.values()} == {"completed"}
    assert all(g.worker and g.started_at and g.ended_at for g in done.groups.values())
    assert done.progress is not None
    assert (done.progress.completed_nodes, done.progress.total_nodes) == (7, 7)
    machine = aws.resources.function_env()["FAN_OUT_STATE_MACHINE_ARN"]
    execution_arn = machine.replace(":stateMachine:", ":execution:") + f":{job.id}"
    execution = sfn.describe_execution(executionArn=execution_arn)
    assert execution["status"] == "SUCCEEDED"
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    entered = [e for e in history if e["type"].endswith("StateEntered")]
    assert len(entered) == transitions(done.fan_out or {}) == 8  # what it costs
    assert not keys(aws, f"data/.kedro-jobs/groups/{job.id}")  # no staging left
    fanned_table = read(aws, "data/data/08_reporting/table.csv")
    fanned_outputs = sorted(o.name for o in done.outputs or [])

    aws.s3.delete_object(Bucket=aws.resources.bucket, Key="data/data/08_reporting/table.csv")
    single, single_body = submit(store, "branches", fan_out=False)
    assert fan_invoke(single_body) == {"batchItemFailures": []}
    alone = store.get(single.id)
    assert alone is not None and alone.status is JobStatus.COMPLETED
    assert alone.fan_out is None and alone.groups is None
    assert done.results == alone.results == {"summary": {"total": 9.0, "branches": 3}}
    assert fanned_outputs == sorted(o.name for o in alone.outputs or [])
    assert read(aws, "data/data/08_reporting/table.csv") == fanned_table


def test_a_duplicate_delivery_starts_no_second_execution(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, sfn: Any, record: Path
) -> None:
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    assert fan_invoke(body) == {"batchItemFailures": []}  # the job's lease is live: nothing
    first = next_message(aws)
    # The same group message twice (SQS delivers at least once): the group runs once.
    assert fan_invoke(first["Body"]) == {"batchItemFailures": []}
    assert fan_invoke(first["Body"]) == {"batchItemFailures": []}
    group = json.loads(first["Body"])["group"]
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=first["ReceiptHandle"])
    done = drain(fan_invoke, aws, store, job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.groups is not None and done.groups[group].runs == 1
    assert executions(record) == dict.fromkeys(BRANCH_NODES, 1)
    machine = aws.resources.function_env()["FAN_OUT_STATE_MACHINE_ARN"]
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]
    assert names.count(job.id) == 1


def test_a_failing_group_fails_the_job_naming_its_node(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, record: Path
) -> None:
    job, body = submit(store, "failing")
    assert fan_invoke(body) == {"batchItemFailures": []}
    done = drain(fan_invoke, aws, store, job.id)
    assert done.status is JobStatus.FAILED
    assert done.error_message == "ValueError: branch b does not fit (node: fit_b)"
    assert "report" not in executions(record)  # the join never ran
    assert not keys(aws, "data/data/")  # nothing committed
    assert done.groups is not None
    assert [g for g, run in done.groups.items() if run.status == "failed"] == ["g2"]
    # Left staged: only the hand-overs of the groups that completed, for a rerun from
    # failure (tests/integration/test_fan_out_rerun.py).
    completed = sorted(g for g, run in done.groups.items() if run.status == "completed")
    staged = keys(aws, f"data/.kedro-jobs/groups/{job.id}/")
    assert sorted({k.split("/")[-2] for k in staged if k.endswith("/handover.json")}) == completed
    assert {k.split("/")[4] for k in staged} == set(completed)


def test_a_cancelled_job_runs_no_further_group_and_commits_nothing(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, record: Path
) -> None:
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    store.request_cancel(job.id, "u")
    done = drain(fan_invoke, aws, store, job.id)
    assert done.status is JobStatus.CANCELLED
    assert not executions(record)
    assert not keys(aws, "data/data/")
    assert not keys(aws, f"data/.kedro-jobs/groups/{job.id}")


def test_a_group_whose_worker_died_is_taken_over(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, group_jobs: GroupJobs, record: Path
) -> None:
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    first = next_message(aws)
    group = json.loads(first["Body"])["group"]
    # A worker claimed the group and died: its claim is in the record, its lease has run out
    # (SQS then delivers the message again, after its visibility timeout).
    dead = group_jobs.claim_group(job.id, group, worker="dead-worker", lease_seconds=-1.0)
    assert dead.job is not None and dead.job.groups is not None
    assert dead.job.groups[group].status == "running"
    assert fan_invoke(first["Body"]) == {"batchItemFailures": []}  # the redelivery
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=first["ReceiptHandle"])
    done = drain(fan_invoke, aws, store, job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.groups is not None
    taken = done.groups[group]
    assert taken.runs == 2 and taken.worker != "dead-worker" and taken.status == "completed"
    assert executions(record) == dict.fromkeys(BRANCH_NODES, 1)


def _dead_claim(store: ApiJobs, aws: Aws, job_id: str) -> tuple[dict[str, Any], float]:
    """A consumer took a group's message (invisible now for the queue's visibility timeout,
    5400 s at the template's defaults), claimed the group and died: its lease just ran out.
    Returns the message's task and the time of the worker's last beat."""
    group_jobs = GroupJobs.over(store)
    taken = next_message(aws)
    task: dict[str, Any] = json.loads(taken["Body"])
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=taken["ReceiptHandle"])
    claim = group_jobs.claim_group(job_id, task["group"], worker="dead-worker", lease_seconds=-1.0,
                                   token=task["token"])  # fmt: skip
    assert claim.job is not None and claim.job.groups is not None
    lease = float(get_settings().job_lease_seconds)
    return task, float(claim.job.groups[task["group"]].lease or 0.0) - lease


def _taken_over(done: Job, task: dict[str, Any], record: Path) -> None:
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.groups is not None
    group = done.groups[task["group"]]
    assert group.runs == 2 and group.worker != "dead-worker" and group.status == "completed"
    assert all(g.runs == 1 for gid, g in done.groups.items() if gid != task["group"])
    assert executions(record) == dict.fromkeys(BRANCH_NODES, 1)  # siblings not run again
    assert task["token"] not in json.dumps(done.model_dump(mode="json"))  # never shown


def test_a_running_sibling_sends_a_dead_group_again(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, record: Path
) -> None:
    """A group whose worker died is noticed by a sibling's next write (a node boundary, or
    its heartbeat every third of a lease: 20 s at the template's 60 s lease), which sends the
    group's message again with the task token the dead claim noted; the next consumer takes
    the group over. Not the 5400 s until the dead worker's message comes back."""
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    task, _ = _dead_claim(store, aws, job.id)
    sibling = next_message(aws)
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=sibling["ReceiptHandle"])
    assert fan_invoke(sibling["Body"]) == {"batchItemFailures": []}
    assert peek(aws).count(task) == 1  # sent again once, by the sibling
    done = drain(fan_invoke, aws, store, job.id)
    _taken_over(done, task, record)
    # The dead worker's own message, back after the visibility timeout: dropped.
    assert fan_invoke(json.dumps(task)) == {"batchItemFailures": []}
    assert executions(record) == dict.fromkeys(BRANCH_NODES, 1)


def test_a_dead_group_with_no_sibling_running_is_taken_over_at_the_next_sweep(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, record: Path
) -> None:
    """No sibling left to notice: the job's lease runs out with the group's (60 s after the
    last beat at the template's timings); the sweeper, once a minute, sends the job again at
    its first sweep after that, and the job's delivery sends the group's message again. Time
    is injected: the sweeps are given their clock."""
    settings = get_settings()
    assert (settings.job_lease_seconds, settings.sweep_after_seconds) == (60, 180)  # template's
    sweeper = Sweeper(
        settings, store=SweepJobs.over(store), queue=JobQueue(settings.jobs_queue_url, sqs=aws.sqs)
    )
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    first = next_message(aws)  # the siblings' messages run first, and end
    siblings = [m for m in [first, next_message(aws)]]
    for message in siblings:
        aws.sqs.delete_message(
            QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
        assert fan_invoke(message["Body"]) == {"batchItemFailures": []}
    task, beat = _dead_claim(store, aws, job.id)
    resent_after = None
    for minute in range(10):  # a sweep a minute from the last beat
        if sweeper.sweep(now=beat + 60 * minute + 1).resent:
            resent_after = 60 * minute + 1
            break
    assert resent_after == 61  # the first sweep after the lease: not 5400 s
    again = next_message(aws)
    assert json.loads(again["Body"]).get("job_id") == job.id  # the job's message
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=again["ReceiptHandle"])
    assert fan_invoke(again["Body"]) == {"batchItemFailures": []}
    redriven = next_message(aws)
    assert json.loads(redriven["Body"]) == task  # the group's, with its token
    aws.sqs.delete_message(
        QueueUrl=aws.resources.queue_url, ReceiptHandle=redriven["ReceiptHandle"]
    )
    assert fan_invoke(redriven["Body"]) == {"batchItemFailures": []}
    _taken_over(drain(fan_invoke, aws, store, job.id), task, record)


def test_a_group_taken_over_as_its_run_ends_leaves_the_answer_to_its_new_worker(
    fan_invoke: Invoke,
    aws: Aws,
    store: ApiJobs,
    group_jobs: GroupJobs,
    record: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker stalled between its group's last node and the group's end: its lease ran out
    meanwhile, and another consumer took the group over. Its end write is refused, and it
    answers nothing: the execution waits for the new worker, so no later group reads a
    hand-over that is being written again, and the group's record stays the new run's."""
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    level = [next_message(aws) for _ in range(3)]
    for message in level:
        aws.sqs.delete_message(
            QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
    *siblings, stalled = level
    for message in siblings:
        assert fan_invoke(message["Body"]) == {"batchItemFailures": []}
    task = json.loads(stalled["Body"])
    fan_out = consumer_handler.consumer().fan_out
    assert fan_out is not None
    project = fan_out.runner

    class StalledAtItsEnd:
        """The project's runner; as the group's run ends, its lease has run out (time
        injected: a beat with a lease in the past) and another consumer claims it."""

        def __getattr__(self, name: str) -> Any:
            return getattr(project, name)

        def run_group(self, request: Any, plan: Any, group_id: str, sink: Any, **kw: Any) -> Any:
            outcome = project.run_group(request, plan, group_id, sink, **kw)
            group_jobs.group_beat(job.id, group_id, worker=sink.worker, completed=2, current=None,
                                  lease_seconds=-1.0)  # fmt: skip
            taken = group_jobs.claim_group(job.id, group_id, worker="new-worker", lease_seconds=60,
                                           token=task["token"])  # fmt: skip
            assert taken.outcome is GroupClaimOutcome.CLAIMED
            return outcome

    monkeypatch.setattr(fan_out, "_runner", StalledAtItsEnd)
    assert fan_invoke(stalled["Body"]) == {"batchItemFailures": []}
    held = store.get(job.id)
    assert held is not None and held.groups is not None
    assert (held.groups[task["group"]].status, held.groups[task["group"]].worker) == (
        "running", "new-worker"
    )  # fmt: skip
    # Not answered: the next level's group is not sent.
    waited = aws.sqs.receive_message(QueueUrl=aws.resources.queue_url, WaitTimeSeconds=5)
    assert not waited.get("Messages")
    monkeypatch.setattr(fan_out, "_runner", lambda: project)
    # The new worker dies too: the group is sent again (as a sibling or the sweeper would)
    # and run by the next consumer, which answers; the job completes.
    group_jobs.group_beat(job.id, task["group"], worker="new-worker", completed=0, current=None,
                          lease_seconds=-1.0)  # fmt: skip
    again = store.get(job.id)
    assert again is not None
    fan_out.take_over_dead_groups(again)
    done = drain(fan_invoke, aws, store, job.id)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.groups is not None and done.groups[task["group"]].runs == 3
    assert executions(record)["report"] == 1


def _commit_due(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, job_id: str, *, lease: float = -600.0
) -> dict[str, Any]:
    """Run the job's groups; the commit's message, taken from the queue. The job's lease is
    as its last group's beat left it: by default long ago (time injected: the commit waited
    on the queue behind other jobs)."""
    group_jobs = GroupJobs.over(store)
    while True:
        message = next_message(aws)
        aws.sqs.delete_message(
            QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
        if json.loads(message["Body"])["fanout"] == "commit":
            break
        assert fan_invoke(message["Body"]) == {"batchItemFailures": []}
    job = store.get(job_id)
    assert job is not None and job.groups is not None
    last, group = max(job.groups.items(), key=lambda item: item[1].ended_at or job.created_at)
    group_jobs.group_beat(job_id, last, worker=str(group.worker), completed=group.completed_nodes,
                          current=None, lease_seconds=lease)  # fmt: skip
    return message


def test_a_cancel_swept_while_the_commit_publishes_cannot_end_the_job(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit holds the job (its lease extended, by a conditional write) before it
    publishes anything: a cancel asked meanwhile is too late, as in a one-worker job's last
    node, and the sweeper does not take the job for abandoned and end it cancelled with its
    outputs published. A job is either completed with its outputs or ended without them."""
    settings = get_settings()
    sweeper = Sweeper(
        settings, store=SweepJobs.over(store), queue=JobQueue(settings.jobs_queue_url, sqs=aws.sqs)
    )
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    commit = _commit_due(fan_invoke, aws, store, job.id)
    fan_out = consumer_handler.consumer().fan_out
    assert fan_out is not None
    project = fan_out.runner
    swept: list[Any] = []

    class CancelledMidCommit:
        """The project's runner; as the commit starts publishing, a cancel is asked and the
        sweeper runs."""

        def __getattr__(self, name: str) -> Any:
            return getattr(project, name)

        def commit_groups(self, job_id: str, plan: Any) -> Any:
            store.request_cancel(job_id, "u")
            swept.append(sweeper.sweep())
            return project.commit_groups(job_id, plan)

    monkeypatch.setattr(fan_out, "_runner", CancelledMidCommit)
    assert fan_invoke(commit["Body"]) == {"batchItemFailures": []}
    done = store.get(job.id)
    assert done is not None
    assert swept and not swept[0].cancelled  # the commit held the job
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert keys(aws, "data/data/08_reporting/")  # its outputs, committed
    assert not keys(aws, f"data/.kedro-jobs/groups/{job.id}")


def test_a_cancel_asked_before_the_commit_commits_nothing(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs
) -> None:
    """Every group ran, the commit's message is on its way (the job's lease still live, so
    the cancel only asks); a cancel asked now wins, as a group's claim fails on it: the
    commit ends the job cancelled and publishes nothing."""
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    commit = _commit_due(fan_invoke, aws, store, job.id, lease=60.0)
    store.request_cancel(job.id, "u")
    assert fan_invoke(commit["Body"]) == {"batchItemFailures": []}
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.CANCELLED
    assert not keys(aws, "data/data/")  # nothing committed
    assert not keys(aws, f"data/.kedro-jobs/groups/{job.id}")  # nothing left staged


def test_a_job_waiting_between_its_groups_is_not_taken_over(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs
) -> None:
    """No group runs and the job's lease ran out: its next group waits on the queue (behind
    other jobs, say). The sweeper leaves it to the state machine (no attempt lost), until the
    state machine itself would have given up on that group."""
    settings = get_settings()
    sweeper = Sweeper(
        settings, store=SweepJobs.over(store), queue=JobQueue(settings.jobs_queue_url, sqs=aws.sqs)
    )
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    waiting = store.get(job.id)
    assert waiting is not None and waiting.lease_expires_at is not None
    later = waiting.lease_expires_at + 600
    assert not sweeper.sweep(now=later).resent
    assert sweeper.sweep(now=waiting.lease_expires_at + TASK_HEARTBEAT_SECONDS + 1).resent
    still = store.get(job.id)
    assert still is not None and still.attempts == 1


def test_six_fanned_out_jobs_at_once_keep_their_own_data(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, record: Path
) -> None:
    """Six jobs of two parameter sets fanned out at once: six executions, their groups'
    messages taken from the queue in batches mixing every job, shuffled. Each job's
    hand-overs are its own, so every result is its own parameters' (x=4: 9.0, x=6: 15.0),
    every node of every job ran once, and no job leaves staging behind."""
    expected = {4: 9.0, 6: 15.0}
    jobs = []
    for n in range(6):
        x = (4, 6)[n % 2]
        job = store.create(
            Job.new(pipeline_name="branches", parameters={"x": x}, options={}, user_id="u")
        )
        jobs.append((job, x))
        body = job.to_message().model_dump_json(exclude_none=True)
        assert fan_invoke(body) == {"batchItemFailures": []}
    shuffle = random.Random(20)
    for _ in range(200):
        if all(getattr(store.get(job.id), "status", None) in TERMINAL for job, _ in jobs):
            break
        batch = aws.from_execution()
        shuffle.shuffle(batch)
        for message in batch:
            aws.sqs.delete_message(
                QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
            assert fan_invoke(message["Body"]) == {"batchItemFailures": []}
    wrong = []
    for job, x in jobs:
        done = store.get(job.id)
        assert done is not None and done.status is JobStatus.COMPLETED, done
        assert done.groups is not None and len(done.groups) == 4
        assert all(g.runs == 1 for g in done.groups.values())
        if done.results != {"summary": {"total": expected[x], "branches": 3}}:
            wrong.append((job.id, x, done.results))
        assert not keys(aws, f"data/.kedro-jobs/groups/{job.id}")
    assert wrong == []
    assert executions(record) == dict.fromkeys(BRANCH_NODES, 6)  # each node once a job


def test_a_forged_fan_out_message_changes_nothing(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs
) -> None:
    """Other systems may send to the jobs queue: a discard without a live task token neither
    fails the job nor removes its data. While the job runs it comes back (a token not yet
    confirmed looks the same: see below) until the queue's maxReceiveCount sends it to the
    dead-letter queue; once the job ended it is dropped."""
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    forged = json.dumps({"fanout": "discard", "job_id": job.id, "token": "forged"})
    assert fan_invoke(forged, message_ids=["m-1"]) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
    still = store.get(job.id)
    assert still is not None and still.status is JobStatus.RUNNING
    assert drain(fan_invoke, aws, store, job.id).status is JobStatus.COMPLETED
    assert fan_invoke(forged) == {"batchItemFailures": []}
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED


def test_a_group_message_whose_token_is_not_yet_confirmed_comes_back_and_runs(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, record: Path
) -> None:
    """moto's and LocalStack's Step Functions register a task's heartbeat only after they
    sent the task's message: a consumer that takes the message at once can find its token
    refused, as an unknown one is. The message comes back after a short backoff (dropped, it
    left the job running until the task's HeartbeatSeconds, 3600 s); nothing ran meanwhile,
    and the group then runs once."""
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    first = next_message(aws)
    task = json.loads(first["Body"])
    unconfirmed = json.dumps({**task, "token": "unconfirmed"})  # refused as the early one is
    failures = fan_invoke(unconfirmed, message_ids=["m-1"])["batchItemFailures"]
    assert failures == [{"itemIdentifier": "m-1"}]  # comes back: not dropped
    assert not executions(record)
    waiting = store.get(job.id)
    assert waiting is not None and waiting.groups is not None
    assert waiting.groups[task["group"]].status == "pending"
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=first["ReceiptHandle"])
    assert fan_invoke(first["Body"]) == {"batchItemFailures": []}  # confirmed now: it runs
    done = drain(fan_invoke, aws, store, job.id)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.groups is not None and done.groups[task["group"]].runs == 1
    assert executions(record) == dict.fromkeys(BRANCH_NODES, 1)
    # Once the group ran, the same message is moot: dropped.
    assert fan_invoke(unconfirmed) == {"batchItemFailures": []}


def test_a_running_group_learns_of_a_cancel_and_of_a_take_over(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, group_jobs: GroupJobs
) -> None:
    """What a group's progress write answers (its sink stops the run at the next node
    boundary on True, and drops its outcome on None)."""
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    claim = group_jobs.claim_group(job.id, "g1", worker="w1", lease_seconds=60)
    assert claim.job is not None and claim.job.groups is not None
    beat = {"completed": 1, "current": "fit_a", "lease_seconds": 60.0}
    assert group_jobs.group_beat(job.id, "g1", worker="w1", **beat)[0] is False
    running = store.get(job.id)
    assert running is not None and running.progress is not None
    assert (running.progress.completed_nodes, running.progress.current_node) == (1, "fit_a")
    assert group_jobs.group_beat(job.id, "g1", worker="w2", **beat)[0] is None  # not w2's
    store.request_cancel(job.id, "u")
    assert group_jobs.group_beat(job.id, "g1", worker="w1", **beat)[0] is True  # stop there


def test_a_running_group_stops_at_its_next_boundary_once_a_sibling_failed(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, group_jobs: GroupJobs
) -> None:
    """The job fails with the first failing group's error: a sibling running meanwhile stops
    at its next node boundary (its progress write reads the record), not after the state
    machine's discard reaches the record."""
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    for group_id in ("g1", "g2"):
        group_jobs.claim_group(job.id, group_id, worker=f"w-{group_id}", lease_seconds=60)
    coordinator = Coordinator(aws.resources.function_env()["FAN_OUT_STATE_MACHINE_ARN"])
    task = FanOutTask(fanout="group", job_id=job.id, group="g1", token="t")
    sink = GroupSink(group_jobs, coordinator, task, "w-g1", 60.0)
    assert sink(1, 2, "fit_a") is False  # go on: nothing failed
    group_jobs.end_group(job.id, "g2", worker="w-g2", status="failed", completed=1,
                         error="ValueError: branch b does not fit (node: fit_b)")  # fmt: skip
    assert sink(1, 2, "fit_a") is True and sink.stopped  # stop here


def test_a_group_running_elsewhere_comes_back_later(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, group_jobs: GroupJobs, record: Path
) -> None:
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    first = next_message(aws)
    group = json.loads(first["Body"])["group"]
    group_jobs.claim_group(job.id, group, worker="alive-elsewhere", lease_seconds=60)
    # Reported failed (SQS delivers it again after a short backoff); nothing ran.
    failures = fan_invoke(first["Body"], message_ids=["m-1"])["batchItemFailures"]
    assert failures == [{"itemIdentifier": "m-1"}]
    assert not executions(record)


def test_a_first_run_fans_out_namespaces_but_not_branches(
    default_invoke: Invoke, aws: Aws, store: ApiJobs, record: Path
) -> None:
    """Never timed: namespaces are the user's independent units (a worker each, at once);
    the DAG's branches run on one worker, which times them; timed and quick, the namespaces
    are packed onto one worker next time."""
    regions, body = submit(store, "regions")
    assert default_invoke(body) == {"batchItemFailures": []}
    fanned = store.get(regions.id)
    assert fanned is not None and fanned.fan_out is not None
    assert fanned.fan_out["grouped_by"] == "namespace"
    done = drain(default_invoke, aws, store, regions.id)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.groups is not None and len(done.groups) == 3

    branches, body = submit(store, "branches")
    assert default_invoke(body) == {"batchItemFailures": []}
    alone = store.get(branches.id)
    assert alone is not None and alone.status is JobStatus.COMPLETED
    assert alone.fan_out is None and alone.groups is None

    again, body = submit(store, "regions")  # its nodes took milliseconds: one worker now
    assert default_invoke(body) == {"batchItemFailures": []}
    quick = store.get(again.id)
    assert quick is not None and quick.status is JobStatus.COMPLETED
    assert quick.fan_out is None


def test_a_group_longer_than_its_invocation_fails_the_job_clearly_then_runs_on_one_worker(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, record: Path
) -> None:
    """A group is run within one invocation (not continued in segments, not moved to
    Fargate): one that outlives it fails the job saying so and what to do, commits nothing,
    and leaves no staging; the time it took is noted, so the pipeline's next job (with
    invocations as long) runs on one worker, which goes on in segments where it must."""
    invocation = get_settings().timeout_margin_seconds + 1.0  # a second to run in
    job = store.create(Job.new(pipeline_name="branches", parameters={"prep_pause": 3.0},
                               options={}, user_id="u"))  # fmt: skip
    body = job.to_message().model_dump_json(exclude_none=True)
    assert fan_invoke(body, timeout=invocation) == {"batchItemFailures": []}
    first = next_message(aws)
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=first["ReceiptHandle"])
    assert fan_invoke(first["Body"], timeout=invocation) == {"batchItemFailures": []}
    done = drain(fan_invoke, aws, store, job.id)
    assert done.status is JobStatus.FAILED
    group = json.loads(first["Body"])["group"]
    assert done.error_message is not None
    assert done.error_message.startswith(f"Group {group} did not finish within one invocation")
    assert '"fan_out": false' in done.error_message
    assert not keys(aws, "data/data/")  # nothing committed
    assert not keys(aws, f"data/.kedro-jobs/groups/{job.id}")  # nothing left staged

    again = store.create(Job.new(pipeline_name="branches", parameters={}, options={},
                                 user_id="u"))  # fmt: skip
    body = again.to_message().model_dump_json(exclude_none=True)
    assert fan_invoke(body, timeout=invocation) == {"batchItemFailures": []}
    assert (store.get(again.id) or again).fan_out is None  # one worker (and its segments)
    alone = drain(fan_invoke, aws, store, again.id)
    assert alone.status is JobStatus.COMPLETED, alone.error_message
    assert alone.fan_out is None and alone.groups is None
    assert alone.results == {"summary": {"total": 9.0, "branches": 3}}


def test_a_fanned_out_job_has_every_node_on_its_timeline_with_its_group_and_worker(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs
) -> None:
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    first = next_message(aws)
    group = json.loads(first["Body"])["group"]
    assert fan_invoke(first["Body"]) == {"batchItemFailures": []}
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=first["ReceiptHandle"])
    running = store.get(job.id)
    assert running is not None and running.status is JobStatus.RUNNING
    assert running.groups is not None
    # One group has run: its nodes are on the record already, the others' not yet.
    planned = next(g for g in (running.fan_out or {})["groups"] if g["id"] == group)
    assert [(n.name, n.status, n.group) for n in running.nodes or []] == [
        (name, "completed", group) for name in planned["nodes"]
    ]

    done = drain(fan_invoke, aws, store, job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.groups is not None and done.nodes is not None
    assert sorted(n.name for n in done.nodes) == sorted(BRANCH_NODES)
    assert done.nodes_omitted == 0
    for node in done.nodes:
        assert node.status == "completed"
        assert node.group is not None and node.worker == done.groups[node.group].worker
        assert node.started_at is not None and node.finished_at is not None
        assert node.duration is not None and node.started_at <= node.finished_at
    # Run order: the branches' level first, the join after them; within a group, its chain.
    assert done.nodes[-1].name == "report"
    names = [n.name for n in done.nodes]
    assert all(names.index(f"prep_{b}") < names.index(f"fit_{b}") for b in "abc")
    # What the API sends: the one-worker shape, plus which group and worker ran each node.
    shown = done.model_dump(mode="json")["nodes"][0]
    assert {"name", "status", "started_at", "finished_at", "duration", "group", "worker"} <= set(
        shown
    )
    assert "timeline" not in done.model_dump(mode="json")["groups"][shown["group"]]


def test_a_failed_groups_node_is_failed_on_the_timeline(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs
) -> None:
    job, body = submit(store, "failing")
    assert fan_invoke(body) == {"batchItemFailures": []}
    done = drain(fan_invoke, aws, store, job.id)
    assert done.status is JobStatus.FAILED
    assert done.groups is not None and done.nodes is not None
    by_name = {n.name: n for n in done.nodes}
    failed = by_name["fit_b"]
    assert failed.status == "failed" and failed.group == "g2"
    assert failed.worker == done.groups["g2"].worker is not None
    assert failed.started_at is not None and failed.finished_at is not None
    assert by_name["prep_b"].status == "completed" and by_name["prep_b"].group == "g2"
    assert "report" not in by_name  # the join never ran


# -- a fan-out message lost on the dead-letter queue -----------------------------------------


def _until(aws: Aws, invoke: Invoke, kind: str) -> dict[str, Any]:
    """Deliver the execution's messages until one of ``kind`` comes: returned, left on the
    queue (invisible until its visibility is reset)."""
    while True:
        message = next_message(aws)
        if json.loads(message["Body"])["fanout"] == kind:
            return message
        aws.sqs.delete_message(
            QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
        assert invoke(message["Body"]) == {"batchItemFailures": []}


def _one_of_the_first_level(aws: Aws) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A message of the first level's groups, left on the queue; its siblings' messages,
    taken off it (other workers took them)."""
    message, *siblings = [next_message(aws) for _ in range(3)]
    for sibling in siblings:
        aws.sqs.delete_message(
            QueueUrl=aws.resources.queue_url, ReceiptHandle=sibling["ReceiptHandle"]
        )
    return message, siblings


def _dead_lettered(aws: Aws, invoke: Invoke, message: dict[str, Any]) -> dict[str, Any]:
    """Every delivery of ``message`` fails (the consumer reports it; time injected: its
    backoff is cut short) until SQS moves it to the dead-letter queue after the template's
    MaxReceiveCount (5) receives: the event the dead-letter function gets."""
    deliveries = 0
    while message is not None:
        deliveries += 1
        failures = invoke(message["Body"], message_ids=["m-1"])["batchItemFailures"]
        assert failures == [{"itemIdentifier": "m-1"}]
        aws.sqs.change_message_visibility(QueueUrl=aws.resources.queue_url,
                                          ReceiptHandle=message["ReceiptHandle"],
                                          VisibilityTimeout=0)  # fmt: skip
        got = aws.messages(max_number=1)
        message = got[0] if got else None
    assert deliveries == 5
    (dead,) = aws.messages(aws.resources.dlq_url, max_number=1)
    region = aws.sqs.meta.region_name
    return {"Records": [to_lambda_record(dead, "arn:dlq", region)]}


def _dead_letter_function(event: dict[str, Any]) -> dict[str, Any]:
    from kedro_jobs.dead_letters import handler as dlq_handler

    result: dict[str, Any] = dlq_handler.handler(event, LocalContext(30, "DeadLetterFunction"))
    return result


def _execution(aws: Aws, sfn: Any, invoke: Invoke, job_id: str) -> dict[str, Any]:
    """The job's execution once it ended, its messages delivered (one invocation each)."""
    machine = get_settings().fan_out_state_machine_arn
    arn = machine.replace(":stateMachine:", ":execution:") + f":{job_id}"
    for _ in range(20):  # moto's execution sends from its own thread
        execution: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        resp = aws.sqs.receive_message(QueueUrl=aws.resources.queue_url, WaitTimeSeconds=1)
        for message in resp.get("Messages", []):
            aws.sqs.delete_message(
                QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
            assert invoke(message["Body"]) == {"batchItemFailures": []}
    raise AssertionError("the execution did not end")


class _Failing:
    """The project's runner, with one of its methods failing as an unreachable data root
    would (a retryable error: the message comes back)."""

    def __init__(self, project: Any, method: str) -> None:
        self.project, self.method = project, method

    def __getattr__(self, name: str) -> Any:
        if name == self.method:

            def unreachable(*args: Any, **kwargs: Any) -> Any:
                raise DependencyUnavailable("S3", "SlowDown: the data root is unreachable")

            return unreachable
        return getattr(self.project, name)


def _fail_runner_method(monkeypatch: pytest.MonkeyPatch, method: str) -> Callable[[], None]:
    """The consumer's fan-out runner fails ``method`` (see _Failing) until the returned
    function mends it."""
    fan_out = consumer_handler.consumer().fan_out
    assert fan_out is not None
    project = fan_out.runner
    monkeypatch.setattr(fan_out, "_runner", lambda: _Failing(project, method))
    return lambda: monkeypatch.setattr(fan_out, "_runner", lambda: project)


def test_a_dead_lettered_commit_fails_the_job_at_once_and_leaves_nothing(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every group ran; the commit's five deliveries failed. The dead-letter function fails
    the job at once, saying what was lost (not hours later as a lost worker), and fails the
    commit's task: the state machine's discard removes the staging and the execution ends.
    The same dead letter delivered again changes nothing."""
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    commit = _until(aws, fan_invoke, "commit")
    mend = _fail_runner_method(monkeypatch, "commit_groups")
    event = _dead_lettered(aws, fan_invoke, commit)
    still = store.get(job.id)
    assert still is not None and still.status is JobStatus.RUNNING  # what it was left as

    assert _dead_letter_function(event) == {"batchItemFailures": []}
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error_message == (
        "The job's commit could not be processed after 5 deliveries: DependencyUnavailable: "
        "S3 unavailable: SlowDown: the data root is unreachable"
    )
    assert keys(aws, f"data/.kedro-jobs/groups/{job.id}")  # the discard is on its way
    mend()
    discard = next_message(aws)
    assert json.loads(discard["Body"])["fanout"] == "discard"
    assert fan_invoke(discard["Body"]) == {"batchItemFailures": []}
    assert _execution(aws, sfn, fan_invoke, job.id)["status"] == "FAILED"
    assert not keys(aws, f"data/.kedro-jobs/groups/{job.id}")  # no staging left
    assert not keys(aws, "data/data/")  # nothing committed

    assert _dead_letter_function(event) == {"batchItemFailures": []}  # delivered again
    again = store.get(job.id)
    assert again is not None and again.model_dump() == failed.model_dump()
    assert not aws.messages()


def test_a_dead_lettered_group_fails_the_job_naming_the_group(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    message, siblings = _one_of_the_first_level(aws)
    task = json.loads(message["Body"])
    fan_out = consumer_handler.consumer().fan_out
    assert fan_out is not None

    def throttled(*args: Any, **kwargs: Any) -> Any:
        raise DependencyUnavailable("DynamoDB", "ProvisionedThroughputExceededException")

    with monkeypatch.context() as patched:
        patched.setattr(fan_out.store, "claim_group", throttled)
        event = _dead_lettered(aws, fan_invoke, message)
    assert _dead_letter_function(event) == {"batchItemFailures": []}
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    name = next(g["name"] for g in (failed.fan_out or {})["groups"] if g["id"] == task["group"])
    assert (failed.error_message or "").startswith(
        f"The job's group {task['group']} ({name}) could not be processed after 5 deliveries: "
        "DependencyUnavailable: DynamoDB unavailable: ProvisionedThroughputExceededException"
    )
    for sibling in siblings:  # each stops, finding the job ended; the discard runs
        assert fan_invoke(sibling["Body"]) == {"batchItemFailures": []}
    assert _execution(aws, sfn, fan_invoke, job.id)["status"] == "FAILED"
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.FAILED
    assert done.error_message == failed.error_message
    assert not keys(aws, f"data/.kedro-jobs/groups/{job.id}")
    assert not keys(aws, "data/data/")


def test_a_dead_lettered_group_message_of_a_group_running_elsewhere_changes_nothing(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, group_jobs: GroupJobs, record: Path
) -> None:
    """A duplicate of a group's message kept coming back while the group ran under a live
    lease elsewhere (its worker answers the same task): not lost, so nothing is failed."""
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    message, _ = _one_of_the_first_level(aws)
    task = json.loads(message["Body"])
    group_jobs.claim_group(job.id, task["group"], worker="alive-elsewhere", lease_seconds=600,
                      token=task["token"])  # fmt: skip
    event = _dead_lettered(aws, fan_invoke, message)
    assert _dead_letter_function(event) == {"batchItemFailures": []}
    still = store.get(job.id)
    assert still is not None and still.status is JobStatus.RUNNING


def test_a_dead_lettered_discard_is_sent_again_and_removes_the_staging(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, sfn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group failed; the discard ended the job but could not remove the staging in five
    deliveries. The dead-letter function fails its task, keeping the job's own error; the
    state machine sends the discard again, which removes the staging."""
    job, body = submit(store, "failing")
    assert fan_invoke(body) == {"batchItemFailures": []}
    discard = _until(aws, fan_invoke, "discard")
    mend = _fail_runner_method(monkeypatch, "discard_groups")
    event = _dead_lettered(aws, fan_invoke, discard)
    # Whatever the groups staged is still there (the siblings of the failed branch may have
    # completed, or stopped first: the load decides).
    staged = staged_groups(aws, job.id)
    assert _dead_letter_function(event) == {"batchItemFailures": []}
    mend()
    again = next_message(aws)
    assert json.loads(again["Body"])["fanout"] == "discard"
    assert again["MessageId"] != discard["MessageId"]  # sent again by the state machine
    assert fan_invoke(again["Body"]) == {"batchItemFailures": []}
    assert _execution(aws, sfn, fan_invoke, job.id)["status"] == "FAILED"
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.FAILED
    assert done.error_message == "ValueError: branch b does not fit (node: fit_b)"
    # What is left is what the job keeps for a rerun from failure: its completed groups'.
    assert staged_groups(aws, job.id) == completed_groups(done) <= staged
    assert (done.reusable_until is not None) == bool(completed_groups(done))


@pytest.mark.parametrize("boundary", [1, 2], ids=["after_its_first_node", "after_its_last_node"])
def test_a_stalled_worker_whose_group_was_taken_over_stops_at_its_next_boundary(
    fan_invoke: Invoke,
    aws: Aws,
    store: ApiJobs,
    group_jobs: GroupJobs,
    record: Path,
    monkeypatch: pytest.MonkeyPatch,
    boundary: int,
) -> None:
    """A worker stalled mid-group (not dead): its lease ran out and another consumer took the
    group over. At its next node boundary, its progress write finds the group no longer its
    own and it stops there, the last node's boundary too (before its hand-over is saved):
    it writes no hand-over where the new worker writes its own, no end, no log, no answer."""
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    message, siblings = _one_of_the_first_level(aws)
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"])
    task = json.loads(message["Body"])
    fan_out = consumer_handler.consumer().fan_out
    assert fan_out is not None
    project = fan_out.runner

    class Stalled:
        """The group's sink; at the chosen boundary the worker has stalled past its lease
        (time injected: a beat with a lease in the past) and another consumer claims it."""

        def __init__(self, sink: Any) -> None:
            self.sink = sink

        def __getattr__(self, name: str) -> Any:
            return getattr(self.sink, name)

        def __call__(self, completed: int, total: int, current: str | None) -> bool:
            if completed == boundary:
                beat = {"completed": completed, "current": current, "lease_seconds": -1.0}
                group_jobs.group_beat(job.id, task["group"], worker=self.sink.worker, **beat)
                taken = group_jobs.claim_group(job.id, task["group"], worker="new-worker",
                                          lease_seconds=60, token=task["token"])  # fmt: skip
                assert taken.outcome is GroupClaimOutcome.CLAIMED
            answer: bool = self.sink(completed, total, current)
            return answer

    class StallingRunner:
        def __getattr__(self, name: str) -> Any:
            return getattr(project, name)

        def run_group(self, request: Any, plan: Any, group_id: str, sink: Any, **kw: Any) -> Any:
            return project.run_group(request, plan, group_id, Stalled(sink), **kw)

    monkeypatch.setattr(fan_out, "_runner", StallingRunner)
    assert fan_invoke(message["Body"]) == {"batchItemFailures": []}
    monkeypatch.setattr(fan_out, "_runner", lambda: project)

    held = store.get(job.id)
    assert held is not None and held.groups is not None
    group = held.groups[task["group"]]
    assert (group.status, group.worker, group.completed_nodes) == ("running", "new-worker", 0)
    assert not keys(aws, f"data/.kedro-jobs/groups/{job.id}/{task['group']}")  # no hand-over
    assert not keys(aws, f"logs/{job.id}/groups/{task['group']}")
    branch = task["group"]
    planned = next(g for g in (held.fan_out or {})["groups"] if g["id"] == branch)
    ran = executions(record)
    assert ran.get(planned["nodes"][1], 0) == (1 if boundary == 2 else 0)  # stopped there
    # The new worker dies too: the group is sent again and run to its end; the job completes
    # with the results of a one-worker run.
    group_jobs.group_beat(job.id, branch, worker="new-worker", completed=0, current=None,
                     lease_seconds=-1.0)  # fmt: skip
    again = store.get(job.id)
    assert again is not None
    fan_out.take_over_dead_groups(again)
    for sibling in siblings:
        assert fan_invoke(sibling["Body"]) == {"batchItemFailures": []}
    done = drain(fan_invoke, aws, store, job.id)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.results == {"summary": {"total": 9.0, "branches": 3}}
    assert done.groups is not None and done.groups[branch].runs == 3


@pytest.fixture
def short_task_machine(
    aws: Aws, sfn: Any, monkeypatch: pytest.MonkeyPatch, fresh_functions: Callable[[], None]
) -> str:
    """The template's state machine with a group's task given up after 1 s without a
    heartbeat (the template's is 3600 s; a running group beats every third of its lease): the
    consumer of this test uses it."""
    props = aws.resources.template["Resources"]["FanOutStateMachine"]["Properties"]
    resolved = aws.resources.resolver({k: v for k, v in props.items() if k != "RoleArn"})
    states = resolved["Definition"]["States"]["Levels"]["ItemProcessor"]["States"]
    task = states["Groups"]["ItemProcessor"]["States"]["Group"]
    task.update(HeartbeatSeconds=1, TimeoutSeconds=2)
    arn = create_state_machine(
        sfn, resolved, "short-group-tasks", "arn:aws:iam::000000000000:role/r"
    )
    monkeypatch.setenv("FAN_OUT_STATE_MACHINE_ARN", arn)
    fresh_functions()
    return arn


def test_a_group_whose_task_timed_out_while_it_ran_fails_the_job_clearly_and_leaves_nothing(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, sfn: Any, short_task_machine: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Step Functions gives up on a group's task (its HeartbeatSeconds passed: here 1 s)
    while the group runs on: the level fails and the discard ends the job. The job says
    which group's task the coordinator gave up on and why, nothing is committed, and no
    staging is left, even though the group went on to save its hand-over."""
    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    message, siblings = _one_of_the_first_level(aws)
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"])
    fan_out = consumer_handler.consumer().fan_out
    assert fan_out is not None
    project = fan_out.runner
    arn = short_task_machine.replace(":stateMachine:", ":execution:") + f":{job.id}"

    def timed_out() -> bool:
        events = sfn.get_execution_history(executionArn=arn)["events"]
        return any(e["type"] == "TaskTimedOut" for e in events)

    class Overtaken:
        """The project's runner; the group's task times out once it is claimed."""

        def __getattr__(self, name: str) -> Any:
            return getattr(project, name)

        def run_group(self, *args: Any, **kw: Any) -> Any:
            for _ in range(100):  # moto's clock: HeartbeatSeconds is 1 s
                if timed_out():
                    break
                aws.sqs.receive_message(QueueUrl=aws.resources.dlq_url, WaitTimeSeconds=0)
            assert timed_out()
            return project.run_group(*args, **kw)

    monkeypatch.setattr(fan_out, "_runner", Overtaken)
    assert fan_invoke(message["Body"]) == {"batchItemFailures": []}
    monkeypatch.setattr(fan_out, "_runner", lambda: project)
    for sibling in siblings:  # their tasks ended with the level: dropped
        assert fan_invoke(sibling["Body"]) == {"batchItemFailures": []}
    assert _execution(aws, sfn, fan_invoke, job.id)["status"] == "FAILED"
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.FAILED
    message = done.error_message or ""
    assert message.startswith("The job's fan-out execution ended before every group had run")
    assert "(Step Functions: States." in message  # what it said (moto's Map re-words it)
    assert "not run to their end: g4 (report)" in message
    assert "HeartbeatSeconds" in message and "Nothing was committed" in message
    assert not keys(aws, "data/data/")  # nothing committed
    # Nothing left staged but what it keeps for a rerun from failure: its completed groups'.
    assert staged_groups(aws, job.id) == completed_groups(done)


def test_a_running_fanned_out_job_shows_its_eta_once_its_nodes_were_timed(
    fan_invoke: Invoke, aws: Aws, store: ApiJobs, api_call: ApiCall
) -> None:
    """As a one-worker job's, a fanned-out job's record has ``eta`` while it runs, from its
    pipeline's past node durations (none on its first run), through the API."""
    first, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    status, shown, _ = api_call("GET", f"/api/v1/jobs/{first.id}", user="u")
    assert status == 200 and shown["status"] == "running" and shown["eta"] is None  # untimed
    assert drain(fan_invoke, aws, store, first.id).status is JobStatus.COMPLETED

    job, body = submit(store, "branches")
    assert fan_invoke(body) == {"batchItemFailures": []}
    planned = store.get(job.id)
    assert planned is not None and planned.fan_out is not None
    assert set(planned.fan_out["node_seconds"]) == set(BRANCH_NODES)  # every node timed
    status, shown, _ = api_call("GET", f"/api/v1/jobs/{job.id}", user="u")
    assert status == 200 and shown["status"] == "running"
    assert shown["eta"] is not None
    assert datetime.fromisoformat(shown["eta"]) >= datetime.fromisoformat(shown["started_at"])
    message = next_message(aws)
    aws.sqs.delete_message(QueueUrl=aws.resources.queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert fan_invoke(message["Body"]) == {"batchItemFailures": []}  # one group has run
    status, shown, _ = api_call("GET", f"/api/v1/jobs/{job.id}", user="u")
    assert shown["status"] == "running" and shown["eta"] is not None
    done = drain(fan_invoke, aws, store, job.id)
    assert done.status is JobStatus.COMPLETED
    status, shown, _ = api_call("GET", f"/api/v1/jobs/{job.id}", user="u")
    assert shown["status"] == "completed" and shown["eta"] is None
