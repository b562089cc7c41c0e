"""Where a job runs when it is not in the consumer Lambda: one task from the same image, on
ECS Fargate (or, under make dev, a local process of the same entry point). The consumer asks
a launcher; the task claims and runs the job like any consumer (consumer/task.py)."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Protocol

from kedro_jobs.core.aws import aws_errors, client
from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.settings import Settings

TASK_MODULE = "kedro_jobs.consumer.task"  # python -m kedro_jobs.consumer.task <job-id>
# The task definition's EntryPoint (template.yaml): the Lambda base image's own entry point
# starts the Lambda runtime, so the task names the module itself and gets the job id as its
# command (the container override below).
TASK_ENTRY_POINT = ("python", "-m", TASK_MODULE)
JOB_TAG = "kedro-jobs:job-id"
_TOKEN_MAX = 64  # RunTask's clientToken: at most 64 characters, ASCII 33-126


class TaskLauncher(Protocol):
    def launch(self, job_id: str, *, token: str) -> str:
        """Start a task that runs ``job_id``; returns its id (an ECS task ARN). ``token``
        makes a repeated request start no second task (ECS RunTask's clientToken). Raises
        DependencyUnavailable when the task could not be started."""
        ...


def client_token(token: str) -> str:
    """``token`` as RunTask accepts it: itself when it fits, else its SHA-256 (64 hex)."""
    if len(token) <= _TOKEN_MAX and all(33 <= ord(c) <= 126 for c in token):
        return token
    return hashlib.sha256(token.encode()).hexdigest()


def _tag_value(text: str) -> str:
    # ECS tag values: letters, digits, spaces and + - = . _ : / @, at most 256.
    return re.sub(r"[^A-Za-z0-9 +\-=._:/@]", "_", text)[:256]


def started_by(job_id: str) -> str:
    # RunTask's startedBy: letters, digits, - / _, at most 128; ListTasks filters by it.
    return re.sub(r"[^A-Za-z0-9/_-]", "_", f"kedro-jobs/{job_id}")[:128]


def _split(ids: str) -> list[str]:
    return [part.strip() for part in ids.split(",") if part.strip()]


class EcsTaskLauncher:
    """One ECS Fargate task per job, by RunTask with the job id as the container's command."""

    def __init__(self, settings: Settings, ecs: Any = None) -> None:
        self.cluster = settings.fargate_cluster
        self.task_definition = settings.fargate_task_definition
        self.container = settings.fargate_container_name
        self.subnets = _split(settings.fargate_subnets)
        self.security_groups = _split(settings.fargate_security_groups)
        self.assign_public_ip = settings.fargate_assign_public_ip
        self._ecs = ecs

    @property
    def ecs(self) -> Any:
        if self._ecs is None:  # on first launch, not at the consumer's cold start
            self._ecs = client("ecs")
        return self._ecs

    def request(self, job_id: str, *, token: str) -> dict[str, Any]:
        """RunTask's arguments for ``job_id``."""
        vpc: dict[str, Any] = {
            "subnets": self.subnets,
            "assignPublicIp": "ENABLED" if self.assign_public_ip else "DISABLED",
        }
        if self.security_groups:
            vpc["securityGroups"] = self.security_groups
        return {
            "cluster": self.cluster,
            "taskDefinition": self.task_definition,
            "launchType": "FARGATE",
            "count": 1,
            "clientToken": client_token(token),
            "networkConfiguration": {"awsvpcConfiguration": vpc},
            "overrides": {"containerOverrides": [{"name": self.container, "command": [job_id]}]},
            "startedBy": started_by(job_id),
            "tags": [{"key": JOB_TAG, "value": _tag_value(job_id)}],
        }

    def launch(self, job_id: str, *, token: str) -> str:
        with aws_errors("ECS"):
            response = self.ecs.run_task(**self.request(job_id, token=token))
        failures = response.get("failures") or []
        tasks = response.get("tasks") or []
        if failures or not tasks:
            reasons = "; ".join(
                f"{f.get('reason', '?')}"
                + (f" ({f['detail']})" if f.get("detail") else "")
                + (f" [{f['arn']}]" if f.get("arn") else "")
                for f in failures
            )
            raise DependencyUnavailable("ECS", f"RunTask started no task: {reasons or 'no reason'}")
        return str(tasks[0]["taskArn"])


def launcher_from_settings(settings: Settings) -> TaskLauncher | None:
    """The launcher of this deployment's Fargate tasks (None: no cluster configured)."""
    if not settings.fargate_cluster:
        return None
    return EcsTaskLauncher(settings)
