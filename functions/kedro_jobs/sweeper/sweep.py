"""One sweep: find live jobs that nothing is working on, and send them again or end them.

- A running job whose lease expired (its consumer died, the heartbeat stopped): a cancel
  asked meanwhile ends it ``cancelled``; on its last allowed attempt it is failed saying so;
  otherwise its message is sent again and the next claim takes it over (attempt + 1, the
  fencing token that keeps the dead run's late writes out).
- A pending job never claimed SWEEP_AFTER_SECONDS after it was created (or last re-sent):
  its message is sent again; after MAX_ATTEMPTS re-sends it is failed saying so.

Found with a Query on the sparse ``sweep`` index, never a Scan. The sweeper marks a job
(conditionally) before it sends, so two sweepers never both send, and a job that a consumer
claims meanwhile is left alone. A duplicate message is harmless: a claim is conditional.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from kedro_jobs.core.queue import JobQueue, UnsendableMessage, encode
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import JobStore, Stranded

logger = Logger(service="kedro-jobs-sweeper", child=True)

# Jobs handled per status per sweep: a sweep's cost stays bounded; the rest wait a minute.
BATCH = 100


@dataclass
class SweepReport:
    resent: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {"resent": self.resent, "cancelled": self.cancelled, "failed": self.failed}


def unclaimed_message(resends: int, after: int) -> str:
    return (
        f"Job failed: no consumer took it; its message was sent {resends + 1} time(s), "
        f"{after} s apart. Check that the consumer is deployed and running, then retry the job."
    )


class Sweeper:
    def __init__(self, settings: Settings, *, store: JobStore, queue: JobQueue) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue

    def sweep(self, now: float | None = None) -> SweepReport:
        now = time.time() if now is None else now
        report = SweepReport()
        for stranded in self.store.stranded(JobStatus.RUNNING, due_before=now, limit=BATCH):
            self._abandoned(stranded, now, report)
        after = self.settings.sweep_after_seconds
        for stranded in self.store.stranded(JobStatus.PENDING, due_before=now - after, limit=BATCH):
            self._unclaimed(stranded, now, report)
        if report.resent or report.cancelled or report.failed:
            logger.info("sweep", extra=report.as_dict())
        return report

    def _abandoned(self, stranded: Stranded, now: float, report: SweepReport) -> None:
        job = stranded.job
        if (job.lease_expires_at or 0.0) > now:
            return  # a heartbeat since the index was read
        if job.cancel_requested:
            if self.store.cancel_abandoned(job) is not None:
                report.cancelled.append(job.id)
            return
        if job.crashed_attempts >= self.settings.max_attempts:
            if self.store.fail_exhausted(job, self.settings.max_attempts) is not None:
                report.failed.append(job.id)
            return
        # Not again before the re-sent message has had its time to be taken.
        self._resend(stranded, now + self.settings.sweep_after_seconds, report)

    def _unclaimed(self, stranded: Stranded, now: float, report: SweepReport) -> None:
        if stranded.resends >= self.settings.max_attempts:
            message = unclaimed_message(stranded.resends, self.settings.sweep_after_seconds)
            if self.store.fail_stranded(stranded, message) is not None:
                report.failed.append(stranded.job.id)
            return
        self._resend(stranded, now, report)

    def _resend(self, stranded: Stranded, next_due: float, report: SweepReport) -> None:
        try:
            body = encode(stranded.job.to_message())
        except (ValidationError, UnsendableMessage) as exc:  # a damaged record: never runs
            message = f"Job failed: its stored record cannot make a queue message ({exc})"
            if self.store.fail_stranded(stranded, message[:1000]) is not None:
                report.failed.append(stranded.job.id)
            return
        if not self.store.mark_resent(stranded, next_due=next_due):
            return  # claimed, beaten or swept by another sweeper since it was read
        # Marked first: if this send fails, the next sweep after next_due sends it again.
        self.queue.send(body)
        report.resent.append(stranded.job.id)
