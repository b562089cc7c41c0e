"""Where a job runs when it is not in the consumer Lambda: one task from the same image, on
ECS Fargate (or, under make dev, a local process of the same entry point). The consumer asks
a launcher; the task claims and runs the job like any consumer (consumer/task.py)."""

from __future__ import annotations

from typing import Protocol

from kedro_jobs.core.settings import Settings

TASK_MODULE = "kedro_jobs.consumer.task"  # python -m kedro_jobs.consumer.task <job-id>


class TaskLauncher(Protocol):
    def launch(self, job_id: str, *, token: str) -> str:
        """Start a task that runs ``job_id``; returns its id (an ECS task ARN). ``token``
        makes a repeated request start no second task (ECS RunTask's clientToken). Raises
        DependencyUnavailable when the task could not be started."""
        ...


def launcher_from_settings(settings: Settings) -> TaskLauncher | None:
    """The launcher of this deployment's Fargate tasks (None: no cluster configured)."""
    return None
