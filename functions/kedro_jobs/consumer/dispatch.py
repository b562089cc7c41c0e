"""Jobs on a task backend (``compute: fargate``, core/compute/): the consumer does not run
them, it asks the backend's launcher for one task that will, at most once per delivery window.

The job stays pending (or running with its lease expired, after a task died) until the task
claims it like any consumer: claim, fencing, heartbeat, cancel and outcome are the same code.
A task that never claims it (it did not start) is asked for again once ``dispatch_due`` has
passed, when the sweeper re-sends the message.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping

from aws_lambda_powertools import Logger

from kedro_jobs.core.compute import FARGATE, TaskBackend, TaskLauncher, long_node_backend
from kedro_jobs.core.errors import DependencyUnavailable, JobAlreadyExists
from kedro_jobs.core.messages import check_may_create, may_change
from kedro_jobs.core.models import Job
from kedro_jobs.core.requests import JobMessage
from kedro_jobs.core.store.roles.run import RunJobs

logger = Logger(service="kedro-jobs-consumer", child=True)

# How long a task has to start and claim its job before another is asked for (a Fargate
# task pulls the image first: a 1 GB image takes a minute or two).
DISPATCH_GRACE_SECONDS = 600

NO_FARGATE = FARGATE.unavailable  # kept importable: the backend's own text


class Dispatcher:
    def __init__(
        self, store: RunJobs, launchers: Mapping[str, TaskLauncher], signing_key: str
    ) -> None:
        self.store = store
        # By task backend name: those this deployment offers (core/compute/).
        self.launchers: dict[str, TaskLauncher] = dict(launchers)
        self.signing_key = signing_key

    @property
    def long_nodes(self) -> TaskBackend | None:
        """Where a job whose node outlives its invocation goes on (None: nowhere here)."""
        return long_node_backend(self.launchers)

    def dispatch(self, job_id: str, message: JobMessage, where: TaskBackend) -> None:
        existing = None if message.job_id is None else self.store.get(job_id)
        if existing is None:
            self._create(job_id, message, where)
        elif not may_change(existing, message.user_id):
            logger.info("job not dispatched: the message's sender could not have made it")
            return
        launcher = self.launchers.get(where.name)
        if launcher is None:
            self.store.fail(job_id, where.unavailable)
            return
        until = time.time() + DISPATCH_GRACE_SECONDS
        if not self.store.mark_dispatched(job_id, until=until):
            logger.info("job not dispatched by this delivery (a task was asked for, or it ended)")
            return
        try:
            task = launcher.launch(job_id, token=f"{job_id}-{int(until)}")
        except Exception as exc:
            # Let the next delivery ask again at once; the record comes back after a backoff.
            self.store.dispatched(job_id, task_arn=None)
            if isinstance(exc, DependencyUnavailable):
                raise
            raise DependencyUnavailable(where.dependency, f"{type(exc).__name__}: {exc}") from exc
        self.store.dispatched(job_id, task_arn=task)
        logger.info("job dispatched to a task", extra={"task": task, "compute": where.name})

    def _create(self, job_id: str, message: JobMessage, where: TaskBackend) -> None:
        """A message from another system makes its job, pending, as the task will find it."""
        check_may_create(message, self.signing_key)
        job = Job.from_message(job_id, message, compute=where.name)
        with contextlib.suppress(JobAlreadyExists):
            self.store.create(job)
