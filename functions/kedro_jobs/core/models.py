"""The job record and what it holds (progress, segments, outputs), and the record's times."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_serializer, model_validator

from kedro_jobs.core.requests import SPEC_FIELDS, Compute, JobMessage, JobSpec, Overlap, RunOptions
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.timeline import NodeRun


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """Fixed-width ISO-8601 UTC, so stored timestamps sort as strings."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class OutputInfo(BaseModel):
    """A dataset the run saved and committed to the data root."""

    name: str
    type: str  # the dataset class, e.g. "kedro_datasets.pandas.ParquetDataset"
    uri: str  # where it was committed: a local path or an s3:// URI
    version: str | None = None  # the save version of a versioned dataset
    size: int | None = None  # bytes, where known
    files: int | None = None  # a folder dataset: how many files it was committed with


class Segment(BaseModel):
    """One stretch of a job's run: an invocation (Lambda) or a task (Fargate)."""

    segment: int  # 1, 2, ...
    compute: Compute = "lambda"
    invocation: str | None = None  # the Lambda request id, the task's ARN, or a local name
    nodes: list[str] = Field(default_factory=list)  # the nodes it finished, in order
    started_at: datetime
    ended_at: datetime | None = None
    ended: str | None = None  # "continued", or the job's status when the job ended with it
    checkpoint_seconds: float | None = None  # what saving its checkpoint took


class GroupRun(BaseModel):
    """One group of a fanned-out job (docs/fan-out.md): where and when it ran, how far."""

    status: str = "pending"  # pending, running, completed, failed, cancelled
    nodes: int = 0
    completed_nodes: int = 0
    current_node: str | None = None
    worker: str | None = None  # the Lambda request id (or local name) that ran it
    # Where it runs: "lambda" (a consumer invocation), or a task backend ("fargate") for a
    # group too long for an invocation (docs/fan-out.md); None until it is claimed.
    compute: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    runs: int = 0  # claims of it: more than one after a worker died mid-group
    lease: float | None = None  # epoch seconds; its worker's claim ends then
    # The execution's task token for this group (what a takeover answers with): stored, never
    # shown or published (whoever holds it may answer for the group).
    token: str | None = Field(default=None, exclude=True, repr=False)


class Progress(BaseModel):
    total_nodes: int = 0
    completed_nodes: int = 0
    current_node: str | None = None


class Job(JobSpec):
    """The job record. The old service's eleven fields keep their names and spelling."""

    # What the client set (pipeline_name, parameters, options, compute, ...) is its JobSpec,
    # as it was accepted (core/requests.py); below, what the service adds.

    model_config = ConfigDict(use_enum_values=False)

    id: str
    user_id: str = "anonymous"
    status: JobStatus = JobStatus.PENDING
    results: dict[str, Any] | None = None
    error_message: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    execution_time: float | None = None
    # Additions (never renames).
    progress: Progress | None = None
    retry_of: str | None = None
    attempts: int = 0
    source: Literal["api", "sqs", "schedule"] = "api"
    cancel_requested: bool = False
    results_location: str | None = None
    outputs: list[OutputInfo] | None = None  # what the run saved (committed on success)
    outputs_location: str | None = None  # S3, when the list is too large for the record
    log_location: str | None = None
    updated_at: datetime | None = None
    lease_expires_at: float | None = None  # epoch seconds; a running job's claim ends then
    segments: list[Segment] | None = None  # where and when it ran, one entry per segment
    # Where the last finished segment saved what the remaining nodes need (None: none yet).
    checkpoint: str | None = None
    task_arn: str | None = None  # the ECS task a Fargate job was dispatched to
    # Between two segments: the last one saved its checkpoint and let go of the job; the next
    # delivery claims it at once (not an attempt lost to a crash: ``continuations`` counts it).
    handed_off: bool = False
    continuations: int = 0
    # A Fargate task was asked for this job; until then (epoch seconds) it is not asked again.
    dispatch_due: float | None = None
    # A schedule's run: the schedule's name, the fire time it ran for, and the schedule's
    # overlap policy when it fired (None: not a schedule's run).
    schedule: str | None = None
    scheduled_for: datetime | None = None
    overlap: Overlap | None = None
    # The node timeline (core/timeline.py): one entry per node that ran or runs, in run order;
    # ``nodes_omitted`` earlier ones left out of a very long pipeline's record. ``eta``: when
    # a running job is expected to end, from its pipeline's past node durations.
    nodes: list[NodeRun] | None = None
    nodes_omitted: int = 0
    eta: datetime | None = None
    # A job fanned out over workers: its group plan (groups, levels, save version), and each
    # group's run by group id (progress then counts the nodes of every group).
    fan_out: dict[str, Any] | None = None
    groups: dict[str, GroupRun] | None = None
    # Rerun from failure (core/rerun.py). A failed, cancelled or timed-out job that kept
    # what its completed nodes made (``checkpoint``, at its last good node boundary) may be
    # rerun from failure until ``reusable_until``; the rerun's ``reused_from`` names it.
    reusable_until: datetime | None = None
    reused_from: str | None = None
    # A rerun from failure of a fanned-out job, until it fans out: the plan it fans out with,
    # ``reused`` naming the groups it does not run again (group id to the job whose kept
    # hand-over it reads; core/rerun.py).
    reuse_plan: dict[str, Any] | None = None
    # Fields of a damaged stored item left out when it was read for display (store.from_item).
    _unreadable: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _progress_across_groups(self) -> Job:
        """While its groups run, a fanned-out job's progress is their nodes, summed."""
        if self.groups:  # in the order they run (g1, g2, ..., g10): the table keeps none
            self.groups = dict(sorted(self.groups.items(), key=lambda g: (len(g[0]), g[0])))
        if self.groups and self.status is JobStatus.RUNNING:
            running = [g.current_node for g in self.groups.values() if g.status == "running"]
            self.progress = Progress(
                total_nodes=sum(g.nodes for g in self.groups.values()),
                completed_nodes=sum(g.completed_nodes for g in self.groups.values()),
                current_node=", ".join(n for n in running if n) or None,
            )
        return self

    # The record, the table and the queue message hold only the run options set.
    @field_serializer("options")
    def _options_given(self, options: RunOptions) -> dict[str, Any]:
        return options.given()

    @property
    def crashed_attempts(self) -> int:
        """Claims that did not end in an outcome or a hand-off (a worker that died): what
        MAX_ATTEMPTS limits. A continuation is a claim, not a lost attempt."""
        return self.attempts - self.continuations

    @property
    def unreadable(self) -> tuple[str, ...]:
        """Fields the stored item had but that could not be read (shown without them)."""
        return self._unreadable

    @classmethod
    def new(
        cls,
        spec: JobSpec | None = None,
        *,
        user_id: str,
        source: Literal["api", "sqs", "schedule"] = "api",
        job_id: str | None = None,
        retry_of: str | None = None,
        schedule: str | None = None,
        scheduled_for: datetime | None = None,
        overlap: Overlap | None = None,
        **fields: Any,
    ) -> Job:
        """A new pending job of what ``spec`` (a request, a message) asks; ``fields``: the
        client-set fields given one by one instead (or over the spec's)."""
        unknown = set(fields) - SPEC_FIELDS
        if unknown:
            raise TypeError(f"Job.new() got fields a client does not set: {sorted(unknown)}")
        now = utcnow()
        return cls.model_validate(
            {
                **(spec.spec() if spec is not None else {}),
                **fields,
                "id": job_id or str(uuid.uuid4()),
                "user_id": user_id,
                "created_at": now,
                "updated_at": now,
                "source": source,
                "retry_of": retry_of,
                "schedule": schedule,
                "scheduled_for": scheduled_for,
                "overlap": overlap,
            }
        )

    @classmethod
    def from_message(
        cls, job_id: str, message: JobMessage, *, compute: Compute | None = None
    ) -> Job:
        """The job a message from another system (or a schedule's fire) makes (``compute``:
        where it runs, if not where the message says)."""
        return cls.new(
            message,
            job_id=job_id,
            user_id=message.user_id or "anonymous",
            source="schedule" if message.schedule else "sqs",
            schedule=message.schedule,
            scheduled_for=message.scheduled_for,
            overlap=message.overlap,
            **({} if compute is None else {"compute": compute}),
        )

    def to_message(self) -> JobMessage:
        return JobMessage.model_validate(
            {
                **self.spec(),
                "version": 1,
                "job_id": self.id,
                "user_id": self.user_id,
                "schedule": self.schedule,
                "scheduled_for": self.scheduled_for,
                "overlap": self.overlap,
            }
        )


class JobPage(BaseModel):
    jobs: list[Job]
    next_cursor: str | None = None
