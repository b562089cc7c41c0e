"""Job state changes told to other systems. The store calls these after each write that
changes a job (one home: every function that changes a job does so through the store).

Publishing is best effort: it never fails the write that caused it. A failure is logged
("job event not published"), counted on the publisher and sent as the CloudWatch metric
``JobEventsNotPublished``. See docs/events.md for the event's shape and ordering.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

from kedro_jobs.core.models import Job, utcnow
from kedro_jobs.core.settings import Settings

logger = logging.getLogger(__name__)

SOURCE = "kedro-jobs"
DETAIL_TYPE = "Job State Change"
# At most one progress event per job this often (per process); state changes always go.
PROGRESS_INTERVAL_SECONDS = 5.0
# EventBridge's limit on one PutEvents entry (source + detail-type + detail + resources).
MAX_ENTRY_BYTES = 256 * 1024
# How the record keeps its own books, not what it says about the job.
INTERNAL_FIELDS = frozenset(
    {"lease_expires_at", "handed_off", "continuations", "dispatch_due", "checkpoint"}
)
# Left out, in this order, while an event is over the limit (results first: they are the
# only large field a receiver can fetch again, from GET /jobs/{id}).
DROPPABLE_FIELDS = ("results", "nodes", "outputs", "segments", "parameters")
# After EventBridge could not be reached, nothing is sent for this long: a job then waits
# for one timed-out call per pause, not one per event.
PAUSE_AFTER_UNREACHABLE_SECONDS = 30.0
# PutEvents takes at most 10 entries and 256 KB in all per request.
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
# A background publisher sends an event at most this long after the change, with the
# events that followed it within this time in the same request (a short job's three).
BATCH_WINDOW_SECONDS = 0.25
# How long a function waits, before it returns, for the events still queued (a Lambda
# container is frozen after it returns: a queued event would wait for its next invocation).
FLUSH_TIMEOUT_SECONDS = 10.0
FAILURE_METRIC = "JobEventsNotPublished"
FAILURE_MESSAGE = "job event not published"

# Tighter than core.aws (3 s connect / 10 s read, 3 attempts): an event is never worth
# holding a job for.
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 2},
    connect_timeout=1,
    read_timeout=2,
)
_UNREACHABLE = (BotoConnectionError, HTTPClientError)

Change = Literal["state", "progress"]


class JobEvents(Protocol):
    def changed(self, job: Job) -> None:
        """The job's state changed (created, started, continued, finished, a cancel asked)."""
        ...

    def progressed(self, job: Job) -> None:
        """The job's progress changed (the publisher may drop some: at most one every few
        seconds per job)."""
        ...


class NoEvents:
    """Nothing is published (no event bus configured)."""

    def changed(self, job: Job) -> None:
        return None

    def progressed(self, job: Job) -> None:
        return None


def flush(events: JobEvents, timeout: float = FLUSH_TIMEOUT_SECONDS) -> None:
    """Send what a publisher still holds (a background one), before a function returns."""
    if isinstance(events, EventBridgeEvents):
        events.flush(timeout)


def entry_size(entry: dict[str, Any]) -> int:
    """An entry's size as EventBridge counts it against MAX_ENTRY_BYTES."""
    size = 14 if "Time" in entry else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key, "")).encode())
    return size + sum(len(r.encode()) for r in entry.get("Resources", []))


def detail(job: Job, change: Change, *, now: datetime | None = None) -> dict[str, Any]:
    """The event's detail: the job's public fields, ``change`` ("state" or "progress") and,
    when some had to be left out to fit an event, ``omitted`` naming them."""
    if change == "progress" and now is not None:
        # The store writes a progress update's updated_at just before this; the job handed
        # here carries the claim's. Now is within milliseconds of the write, and keeps a
        # job's events sortable by updated_at.
        job = job.model_copy(update={"updated_at": max(now, job.updated_at or now)})
    body: dict[str, Any] = job.model_dump(mode="json", exclude=set(INTERNAL_FIELDS))
    body["change"] = change
    return body


def entry(job: Job, change: Change, bus: str, *, now: datetime | None = None) -> dict[str, Any]:
    """One PutEvents entry for the job, within EventBridge's size limit (large fields left
    out and named in ``omitted``)."""
    body = detail(job, change, now=now)
    omitted: list[str] = []
    out = _entry(body, bus)
    for name in DROPPABLE_FIELDS:
        if entry_size(out) <= MAX_ENTRY_BYTES:
            break
        if body.get(name) is None:
            continue
        body.pop(name)
        omitted.append(name)
        body["omitted"] = omitted
        out = _entry(body, bus)
    if entry_size(out) > MAX_ENTRY_BYTES:
        raise ValueError(f"the event is {entry_size(out)} bytes even without {omitted}")
    return out


def _entry(body: dict[str, Any], bus: str) -> dict[str, Any]:
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        "EventBusName": bus,
    }


class EventBridgeEvents:
    """Publishes each change of a job on an EventBridge bus, best effort.

    ``published``, ``failed`` and ``throttled`` count this publisher's events (per
    container): what was sent, what could not be (logged and sent as a metric), and the
    progress events left out by the per-job interval.

    With ``background=True`` (the consumer's) an event is built when the job changes and
    sent by a thread of this publisher, several to a PutEvents request, so a job never
    waits on EventBridge; the function calls :meth:`flush` before it returns. Events keep
    their order: one sender, first in first out.
    """

    def __init__(
        self,
        bus: str,
        *,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
        progress_interval: float = PROGRESS_INTERVAL_SECONDS,
        background: bool = False,
    ) -> None:
        self.bus = bus
        self.background = background
        self._client = client
        self._clock = clock
        self.progress_interval = progress_interval
        self.published = 0
        self.failed = 0
        self.throttled = 0
        self._last_progress: dict[str, float] = {}
        self._paused_until = 0.0
        self._lock = threading.Lock()  # progress may come from the heartbeat's thread
        # The background sender's queue: (job, entry) pairs, and whether it is sending.
        self._queue: deque[tuple[Job, dict[str, Any]]] = deque()
        self._sending = False
        self._flushing = 0  # callers of flush() waiting
        self.batch_window = BATCH_WINDOW_SECONDS
        self._wake = threading.Condition()
        self._sender: threading.Thread | None = None
        # Held while a request is sent (and its failures logged), and across a fork: a child
        # forked from the consumer never inherits a lock this thread held (stdout's, say).
        self._send_lock = threading.Lock()
        if background:
            _BACKGROUND.add(self)

    @property
    def client(self) -> Any:
        if self._client is None:
            # Its own client: the shared one's timeouts and retries are for the job's data.
            self._client = boto3.session.Session().client("events", config=_CONFIG)
        return self._client

    def changed(self, job: Job) -> None:
        self._publish(job, "state")

    def progressed(self, job: Job) -> None:
        now = self._clock()
        with self._lock:
            last = self._last_progress.get(job.id)
            if last is not None and now - last < self.progress_interval:
                self.throttled += 1
                return
            if len(self._last_progress) > 1000:  # a warm container runs many jobs
                horizon = now - self.progress_interval
                self._last_progress = {k: t for k, t in self._last_progress.items() if t > horizon}
            self._last_progress[job.id] = now
        self._publish(job, "progress")

    def _publish(self, job: Job, change: Change) -> None:
        # Nothing here may raise: the write that called it has already happened.
        try:
            built = entry(job, change, self.bus, now=utcnow())
        except Exception as exc:  # best effort, whatever went wrong
            self._failed(job, f"{type(exc).__name__}: {exc}")
            return
        if not self.background:
            self._send([(job, built)])
            return
        with self._wake:
            self._queue.append((job, built))
            self._start_sender()
            self._wake.notify_all()

    def flush(self, timeout: float = FLUSH_TIMEOUT_SECONDS) -> bool:
        """Wait until every queued event has been sent (or counted as not published).
        False if some were still queued after ``timeout`` seconds (they go later)."""
        deadline = time.monotonic() + timeout
        with self._wake:
            self._flushing += 1
            self._wake.notify_all()
            try:
                while self._queue or self._sending:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        logger.warning(
                            "job events still queued", extra={"queued": len(self._queue)}
                        )
                        return False
                    self._wake.wait(left)
            finally:
                self._flushing -= 1
        return True

    def _start_sender(self) -> None:
        # Called with self._wake held. After a fork the child has no sender thread: a
        # new one is started in the process that needs it.
        if self._sender is None or not self._sender.is_alive():
            self._sender = threading.Thread(
                target=self._send_queued, name="job-events", daemon=True
            )
            self._sender.start()

    def _send_queued(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
                # Gather what follows within the window into one request, unless a flush
                # waits for them.
                until = time.monotonic() + self.batch_window
                while len(self._queue) < MAX_BATCH_ENTRIES and not self._flushing:
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self._wake.wait(left)
                batch = [self._queue.popleft()]
                size = entry_size(batch[0][1])
                while self._queue and len(batch) < MAX_BATCH_ENTRIES:
                    size += entry_size(self._queue[0][1])
                    if size > MAX_BATCH_BYTES:
                        break
                    batch.append(self._queue.popleft())
                self._sending = True
            try:
                with self._send_lock:
                    self._send(batch)
            finally:
                with self._wake:
                    self._sending = False
                    self._wake.notify_all()

    def _send(self, batch: list[tuple[Job, dict[str, Any]]]) -> None:
        """One PutEvents request for up to MAX_BATCH_ENTRIES entries; never raises."""
        try:
            if self._clock() < self._paused_until:
                for job, _ in batch:
                    self._failed(job, "EventBridge was unreachable moments ago; not trying yet")
                return
            resp = self.client.put_events(Entries=[built for _, built in batch])
        except _UNREACHABLE as exc:
            self._paused_until = self._clock() + PAUSE_AFTER_UNREACHABLE_SECONDS
            for job, _ in batch:
                self._failed(job, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:  # best effort, whatever went wrong
            for job, _ in batch:
                self._failed(job, f"{type(exc).__name__}: {exc}")
            return
        results = resp.get("Entries") or []
        some_failed = bool(resp.get("FailedEntryCount"))
        for i, (job, _) in enumerate(batch):
            result = results[i] if i < len(results) else {}
            if result.get("ErrorCode") or (some_failed and i >= len(results)):
                self._failed(job, f"{result.get('ErrorCode')}: {result.get('ErrorMessage')}")
            else:
                self.published += 1

    def _failed(self, job: Job, reason: str) -> None:
        self.failed += 1
        try:
            logger.warning(
                FAILURE_MESSAGE,
                extra={"job_id": job.id, "status": str(job.status), "reason": reason},
            )
            _count_failure()
        except Exception:  # noqa: S110 - counting a failure must not fail either
            pass


_BACKGROUND: weakref.WeakSet[EventBridgeEvents] = weakref.WeakSet()
_held: list[EventBridgeEvents] = []
# One fork at a time: two threads forking at once (two jobs of one container) would share
# ``_held`` and take the same send lock twice.
_forking = threading.Lock()


def _before_fork() -> None:
    # A fork waits for a request in flight (rare: a job forks just after its claim, before
    # the batching window has passed), so the child starts with no lock held by the sender.
    _forking.acquire()
    _held[:] = list(_BACKGROUND)
    for publisher in _held:
        publisher._send_lock.acquire()


def _after_fork_in_parent() -> None:
    for publisher in _held:
        publisher._send_lock.release()
    _held.clear()
    _forking.release()


def _after_fork_in_child() -> None:
    # The child has no sender thread and sends nothing; fresh locks all the same.
    global _forking
    for publisher in _held:
        publisher._send_lock = threading.Lock()
        publisher._wake = threading.Condition()
        publisher._sender = None
        publisher._sending = False
    _held.clear()
    _forking = threading.Lock()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


def _count_failure() -> None:
    """One CloudWatch metric (an EMF line on stdout, no API call), emitted now: the
    functions that change jobs do not all flush a Metrics object."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=FAILURE_METRIC, unit=MetricUnit.Count, value=1):
        pass


def events_from_settings(settings: Settings, *, background: bool = False) -> JobEvents:
    if not settings.event_bus_name:
        return NoEvents()
    return EventBridgeEvents(settings.event_bus_name, background=background)
