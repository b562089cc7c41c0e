"""What a compute backend is: a place a job runs, named by the job record's ``compute`` field.

Two kinds. The consumer itself (``lambda``): it runs the job in segments, one invocation at a
time. A task backend (``fargate``): the consumer does not run the job, it asks the backend's
launcher for one task from the same image, and that task claims and runs the job like any
consumer (``python -m kedro_jobs.consumer.task <job-id>``, consumer/task.py).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Protocol

from kedro_jobs.core.settings import Settings
from kedro_jobs.names import Compute

TASK_MODULE = "kedro_jobs.consumer.task"  # python -m kedro_jobs.consumer.task <job-id>
# A task's entry point: the Lambda base image's own entry point starts the Lambda runtime,
# so a task names the module itself and gets the job id as its command.
TASK_ENTRY_POINT = ("python", "-m", TASK_MODULE)
JOB_TAG = "kedro-jobs:job-id"
_TOKEN_MAX = 64  # ECS RunTask's clientToken: at most 64 characters, ASCII 33-126


GROUP_FLAG = "--group"  # a task that runs one group of a fanned-out job (docs/fan-out.md)
CLAIM_FLAG = "--claim"  # the group's claim the dispatching consumer made for the task


def task_command(job_id: str, group: str | None = None, claim: str | None = None) -> list[str]:
    """A task's command (after its entry point): the job id; for a fanned-out job's group,
    the group and the claim the consumer made for it (the task takes the group over from
    that claim only). The execution's task token stays on the record, never in a command."""
    if group is None:
        return [job_id]
    return [job_id, GROUP_FLAG, group, *([CLAIM_FLAG, claim] if claim else [])]


class TaskLauncher(Protocol):
    def launch(
        self, job_id: str, *, token: str, group: str | None = None, claim: str | None = None
    ) -> str:
        """Start a task that runs ``job_id`` (or, with ``group``, only that group of it,
        taken over from ``claim``); returns its id (e.g. an ECS task ARN). ``token`` makes a
        repeated request start no second task. Raises DependencyUnavailable when the task
        could not be started."""
        ...


def client_token(token: str) -> str:
    """``token`` as RunTask accepts it: itself when it fits, else its SHA-256 (64 hex)."""
    if len(token) <= _TOKEN_MAX and all(33 <= ord(c) <= 126 for c in token):
        return token
    return hashlib.sha256(token.encode()).hexdigest()


class ComputeBackend(ABC):
    """One place a job can run. ``name`` is its value of the record's ``compute`` field."""

    name: Compute
    # Whether the consumer runs its jobs itself (else it asks this backend for a task).
    in_consumer: bool
    # What it is for, in a few words: the web form and `GET /api/v1/compute` show it.
    description: str

    @abstractmethod
    def offered(self, settings: Settings) -> bool:
        """Whether this deployment offers it (the API refuses a job asking for one that is
        not, with ``not_offered``)."""

    @property
    def not_offered(self) -> str:
        """The 422's detail for a submission asking for it where it is not offered."""
        return f'compute "{self.name}" is not offered by this deployment'


class InConsumer(ComputeBackend):
    """The consumer runs the job itself, continuing across invocations at node boundaries."""

    in_consumer = True

    def offered(self, settings: Settings) -> bool:
        return True


class TaskBackend(ComputeBackend):
    """One task per job, started by a launcher; the task runs the job to its end."""

    in_consumer = False
    # The name its errors give the service (DependencyUnavailable's dependency).
    dependency: str
    # The Settings field whose value offers it (empty: not offered); a local stack offers it
    # by setting that field's variable (its tasks then run as local processes).
    offer_setting: str
    # A job on the consumer whose node outlives an invocation moves here, where offered.
    takes_long_nodes: bool = False
    # A fanned-out job's group too long for an invocation runs here, where offered.
    takes_long_groups: bool = False

    def offered(self, settings: Settings) -> bool:
        return bool(getattr(settings, self.offer_setting))

    @property
    def offer_env(self) -> str:
        """The environment variable of ``offer_setting``."""
        return self.offer_setting.upper()

    @property
    @abstractmethod
    def unavailable(self) -> str:
        """Why a job that reached the consumer asking for it fails where it is not offered
        (a message from another system: the API would have refused it)."""

    @abstractmethod
    def launcher(self, settings: Settings) -> TaskLauncher:
        """The launcher of this deployment's tasks (called only where it is offered)."""

    @abstractmethod
    def task_seconds(self, settings: Settings) -> float:
        """How long one task may run its job."""
