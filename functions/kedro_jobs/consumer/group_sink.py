"""A running group's progress sink and heartbeat (a fanned-out job, docs/fan-out.md)."""

from __future__ import annotations

import time
from collections.abc import Callable

from aws_lambda_powertools import Logger

from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.fanout import Coordinator, FanOutTask
from kedro_jobs.core.models import Job, utcnow
from kedro_jobs.core.store.roles.groups import GroupJobs
from kedro_jobs.core.timeline import MAX_TIMELINE_NODES, Timeline, group_part

logger = Logger(service="kedro-jobs-consumer", child=True)


class GroupSink:
    """A running group's progress sink and heartbeat: its entry in the record, its lease and
    the job's, and the task's heartbeat to the execution. Says stop on a cancel, when a
    sibling group failed or the job ended, when the execution no longer waits, or when the
    group changed hands (``lost``)."""

    def __init__(
        self, store: GroupJobs, coordinator: Coordinator, task: FanOutTask, worker: str,
        lease: float, *, siblings: Callable[[Job], None] | None = None,
        cap: int = MAX_TIMELINE_NODES,
    ) -> None:  # fmt: skip
        self.store = store
        # Shown the job at each write: a sibling group whose worker died is sent again.
        self.siblings = siblings
        self.coordinator = coordinator
        self.task = task
        self.worker = worker
        self.lease = lease
        self.completed = 0
        self.current: str | None = None
        self.lost = False
        self.stopped = False
        self._next_beat = time.monotonic() + lease / 3
        # The group's part of the job's node timeline (its latest ``cap`` nodes), written
        # with each progress and heartbeat write and the group's end write.
        self.timeline = Timeline([], segment=None, compute=None)
        self.cap = cap

    def heartbeat(self) -> bool:
        now = time.monotonic()
        if now < self._next_beat:
            return True
        self._next_beat = now + self.lease / 3
        return not (self._beat_execution() or self._write())

    def __call__(self, completed: int, total: int, current: str | None, /) -> bool:
        self.completed, self.current = completed, current
        self.timeline.began(current, utcnow())
        # Written at the last boundary too: the group's hand-over is saved next, and a worker
        # that stalled and lost the group meanwhile must not save it over the new worker's.
        return self._write()

    def node_finished(self, name: str, seconds: float) -> None:
        self.timeline.finished(name, seconds, utcnow())

    def ended(self, status: str) -> str:
        """The group's part of the timeline once its run ended with ``status``."""
        self.timeline.ended(status, utcnow())
        return group_part(self.timeline, self.cap)

    def _beat_execution(self) -> bool:
        try:
            alive = self.coordinator.heartbeat(self.task.token)
        except DependencyUnavailable as exc:
            logger.warning("task heartbeat not sent", extra={"reason": exc.reason})
            return False
        self.stopped = self.stopped or not alive
        return not alive

    def _write(self) -> bool:
        try:
            stop, job = self.store.group_beat(
                self.task.job_id,
                str(self.task.group),
                worker=self.worker,
                completed=self.completed,
                current=self.current,
                lease_seconds=self.lease,
                timeline=group_part(self.timeline, self.cap),
            )
        except DependencyUnavailable as exc:
            logger.warning("group progress not recorded", extra={"reason": exc.reason})
            return False
        if stop is None:
            self.lost = True
            return True
        if job is None:
            return stop
        if self._sibling_failed(job):
            # The job fails with that group's error: this one stops at this node boundary
            # rather than run on until the coordinator's discard reaches the record.
            self.stopped = True
            return True
        if self.siblings is not None:
            try:
                self.siblings(job)
            except DependencyUnavailable as exc:  # the next beat tries again
                logger.warning("dead sibling group not sent again", extra={"reason": exc.reason})
        return stop

    def _sibling_failed(self, job: Job) -> bool:
        own = str(self.task.group)
        return any(g.status == "failed" for gid, g in (job.groups or {}).items() if gid != own)
