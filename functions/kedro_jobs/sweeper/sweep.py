"""One sweep: find live jobs that nothing is working on, and send them again or end them.
What becomes of each is decided by ``core.liveness.decide``; here is only how it is done.

- A running job whose lease expired (its consumer died, the heartbeat stopped): a cancel
  asked meanwhile ends it ``cancelled``; on its last allowed attempt it is failed saying so;
  otherwise its message is sent again and the next claim takes it over (attempt + 1, the
  fencing token that keeps the dead run's late writes out).
- A pending job not claimed SWEEP_AFTER_SECONDS after it was queued (or last looked at):
  waiting behind others while a consumer works (left alone, however long the backlog);
  sent again only when the queue holds fewer messages than jobs to take; failed after
  MAX_ATTEMPTS looks at which no consumer was working at all.

Found with a Query on the sparse ``sweep`` index, never a Scan. The sweeper marks a job
(conditionally) before it sends, so two sweepers never both send, and a job that a consumer
claims meanwhile is left alone. A duplicate message is harmless: a claim is conditional.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from kedro_jobs.core.liveness import Action, Limits, QueueFacts, decide, lost_message
from kedro_jobs.core.queue import JobQueue, UnsendableMessage, encode
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store.delivery import Stranded
from kedro_jobs.core.store.roles.sweep import SweepJobs

logger = Logger(service="kedro-jobs-sweeper", child=True)

# Jobs handled per status per sweep: a sweep's cost stays bounded; the rest wait a minute.
BATCH = 100


@dataclass
class SweepReport:
    resent: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "resent": self.resent,
            "cancelled": self.cancelled,
            "failed": self.failed,
            "waiting": self.waiting,
        }


class Sweeper:
    def __init__(self, settings: Settings, *, store: SweepJobs, queue: JobQueue) -> None:
        self.settings = settings
        self.limits = Limits.of(settings)
        self.store = store
        self.queue = queue

    def sweep(self, now: float | None = None) -> SweepReport:
        now = time.time() if now is None else now
        report = SweepReport()
        for stranded in self.store.stranded(JobStatus.RUNNING, due_before=now, limit=BATCH):
            self._running(stranded, now, report)
        after = self.settings.sweep_after_seconds
        overdue = self.store.stranded(JobStatus.PENDING, due_before=now - after, limit=BATCH)
        if overdue:
            facts = self.facts(now)
            for stranded in overdue:
                facts = self._pending(stranded, now, facts, report)
        if report.resent or report.cancelled or report.failed:
            logger.info("sweep", extra=report.as_dict())
        return report

    def facts(self, now: float) -> QueueFacts:
        """The queue's depth and the consumers' heartbeats (live leases), read once a sweep."""
        waiting, in_flight = self.queue.depth()
        return QueueFacts(
            waiting=waiting,
            in_flight=in_flight,
            pending_jobs=self.store.count_live(JobStatus.PENDING),
            live_runs=self.store.count_live(JobStatus.RUNNING, due_after=now),
        )

    def _running(self, stranded: Stranded, now: float, report: SweepReport) -> None:
        job = stranded.job
        action = decide(job, now, self.limits)
        if action is Action.CANCEL:
            if self.store.cancel_abandoned(job) is not None:
                report.cancelled.append(job.id)
        elif action is Action.EXHAUSTED:
            if self.store.fail_exhausted(job, self.settings.max_attempts) is not None:
                report.failed.append(job.id)
        elif action in (Action.TAKE_OVER, Action.CONTINUE):
            # Not again before the re-sent message has had its time to be taken.
            self._resend(stranded, now + self.settings.sweep_after_seconds, 0, report)
        # HELD: a heartbeat since the index was read.

    def _pending(
        self, stranded: Stranded, now: float, facts: QueueFacts, report: SweepReport
    ) -> QueueFacts:
        """What the sweep does with one overdue pending job; the facts after it."""
        action = decide(
            stranded.job,
            now,
            self.limits,
            facts=facts,
            looked_at=stranded.due,
            looks=stranded.looks,
        )
        # A look with a consumer at work starts the count of consumer-less looks again.
        looks = 0 if facts.consumer_alive else stranded.looks + 1
        if action is Action.WAITING:
            if self.store.mark_looked(stranded, next_due=now, looks=0):
                report.waiting.append(stranded.job.id)
        elif action is Action.UNTAKEN:
            self.store.mark_looked(stranded, next_due=now, looks=looks)
        elif action is Action.LOST:
            message = lost_message(stranded.looks, self.settings.sweep_after_seconds)
            if self.store.fail_stranded(stranded, message) is not None:
                report.failed.append(stranded.job.id)
        elif action is Action.RESEND and self._resend(stranded, now, looks, report):
            return facts.after_send()
        return facts

    def _resend(self, stranded: Stranded, next_due: float, looks: int, report: SweepReport) -> bool:
        try:
            body = encode(stranded.job.to_message())
        except (ValidationError, UnsendableMessage) as exc:  # a damaged record: never runs
            message = f"Job failed: its stored record cannot make a queue message ({exc})"
            if self.store.fail_stranded(stranded, message[:1000]) is not None:
                report.failed.append(stranded.job.id)
            return False
        if not self.store.mark_looked(stranded, next_due=next_due, looks=looks):
            return False  # claimed, beaten or swept by another sweeper since it was read
        # Marked first: if this send fails, the next sweep after next_due sends it again.
        self.queue.send(body)
        report.resent.append(stranded.job.id)
        return True
