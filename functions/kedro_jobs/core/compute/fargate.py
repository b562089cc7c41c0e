"""The ``fargate`` backend: one ECS Fargate task per job, from the consumer's own image (or,
under make dev, a local process of the same entry point). The consumer asks the launcher; the
task claims and runs the job like any consumer (consumer/task.py). docs/compute.md."""

from __future__ import annotations

import re
from typing import Any

from kedro_jobs.core.aws import aws_errors, client
from kedro_jobs.core.compute.base import (
    JOB_TAG,
    TASK_ENTRY_POINT,
    TASK_MODULE,
    TaskBackend,
    TaskLauncher,
    client_token,
    task_command,
)
from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.settings import Settings

__all__ = [
    "FARGATE",
    "JOB_TAG",
    "TASK_ENTRY_POINT",
    "TASK_MODULE",
    "EcsTaskLauncher",
    "FargateBackend",
    "client_token",
    "started_by",
]


def _tag_value(text: str) -> str:
    # ECS tag values: letters, digits, spaces and + - = . _ : / @, at most 256.
    return re.sub(r"[^A-Za-z0-9 +\-=._:/@]", "_", text)[:256]


def started_by(job_id: str, group: str | None = None) -> str:
    # RunTask's startedBy: letters, digits, - / _, at most 128; ListTasks filters by it.
    name = f"kedro-jobs/{job_id}" + (f"/{group}" if group else "")
    return re.sub(r"[^A-Za-z0-9/_-]", "_", name)[:128]


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

    def request(
        self, job_id: str, *, token: str, group: str | None = None, claim: str | None = None
    ) -> dict[str, Any]:
        """RunTask's arguments for ``job_id`` (or one ``group`` of it)."""
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
            "overrides": {
                "containerOverrides": [
                    {"name": self.container, "command": task_command(job_id, group, claim)}
                ]
            },
            "startedBy": started_by(job_id, group),
            "tags": [{"key": JOB_TAG, "value": _tag_value(job_id)}],
        }

    def launch(
        self, job_id: str, *, token: str, group: str | None = None, claim: str | None = None
    ) -> str:
        request = self.request(job_id, token=token, group=group, claim=claim)
        with aws_errors("ECS"):
            response = self.ecs.run_task(**request)
        failures = response.get("failures") or []
        tasks = response.get("tasks") or []
        if failures or not tasks:
            reasons = "; ".join(
                f"{f.get('reason', '?')}"
                + (f" ({f['detail']})" if f.get("detail") else "")
                + (f" [{f['arn']}]" if f.get("arn") else "")
                for f in failures
            )
            raise DependencyUnavailable(
                FargateBackend.dependency, f"RunTask started no task: {reasons or 'no reason'}"
            )
        return str(tasks[0]["taskArn"])


class FargateBackend(TaskBackend):
    name = "fargate"
    description = "one ECS task, for nodes over 15 min"
    dependency = "ECS"
    offer_setting = "fargate_cluster"  # FARGATE_CLUSTER: the template sets it with an image
    takes_long_nodes = True  # a task has hours: a node longer than an invocation fits
    takes_long_groups = True  # and so does a fanned-out job's long group

    @property
    def not_offered(self) -> str:
        return (
            'compute "fargate" is not offered by this deployment (no FARGATE_CLUSTER); '
            'use "lambda", which continues long jobs across invocations'
        )

    @property
    def unavailable(self) -> str:
        return (
            "This deployment offers no Fargate compute (FARGATE_CLUSTER is not set), so a job "
            'with "compute": "fargate" cannot run; submit it without compute, or deploy with a '
            "cluster"
        )

    def launcher(self, settings: Settings) -> TaskLauncher:
        return EcsTaskLauncher(settings)

    def task_seconds(self, settings: Settings) -> float:
        return float(settings.fargate_task_seconds)


FARGATE = FargateBackend()
