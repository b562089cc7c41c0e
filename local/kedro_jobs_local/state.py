"""The embedded moto's state on disk: a snapshot of its backends plus a journal of the writes
made since, so `make dev` keeps its jobs, logs and queued messages across restarts and crashes.

Why not moto's own recorder: it logs every request from the first, so a restart replays the
whole history (reads, polls and all) and grows without end. Here the DynamoDB, SQS and S3
backends are pickled (a restart loads them in a fraction of a second) and only the writes
since the last snapshot are replayed. Each write is appended to the journal before its
response leaves, so a killed emulator loses nothing the API or a consumer saw acknowledged.

A snapshot is a consistent cut: writes hold a shared lock while they apply and journal, a
snapshot takes it exclusively just long enough to fork; the forked child pickles the frozen
copy while the server goes on. SQS receives are not journaled (their receipt handles and
visibility clocks cannot be replayed faithfully), so a message received and deleted between
two snapshots may be delivered once more after a crash of the emulator: SQS's at-least-once
contract, which the consumer already honours.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro_jobs_local.state_journal import (
    Journal,
    classify,
    read_records,
    replay_environ,
    request_record,
    segments,
)
from kedro_jobs_local.state_snapshot import capture, install, read_snapshot, write_snapshot

logger = logging.getLogger("kedro_jobs_local.state")


class SharedExclusiveLock:
    """Many writers at once, or one snapshot; a waiting snapshot goes before new writers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._exclusive and not self._waiting)
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: not self._exclusive and not self._shared)
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        return bytes(stream.read(int(length)))
    if environ.get("wsgi.input_terminated"):
        return bytes(stream.read())
    return b""


@dataclass
class StateKeeper:
    """WSGI middleware over moto: DynamoDB one request at a time (each is atomic on AWS) and,
    with a folder, every write journaled and the backends snapshotted now and then."""

    app: Any
    folder: Path | None = None
    snapshot_seconds: float = 30.0
    # At most this many writes to replay after a crash (~3.5 ms each here): ~2 s.
    snapshot_records: int = 500
    dynamodb: threading.Lock = field(default_factory=threading.Lock)
    cut: SharedExclusiveLock = field(default_factory=SharedExclusiveLock)
    journal: Journal | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _last_snapshot: float = field(default_factory=time.monotonic)
    _pending_snapshot: bool = False  # after a replay: the next restart need not replay again

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.journal is None:
            if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
                with self.dynamodb:
                    return list(self.app(environ, start_response))
            result: Iterable[bytes] = self.app(environ, start_response)
            return result
        body = b""
        if environ.get("REQUEST_METHOD") in {"PUT", "POST", "DELETE"}:
            body = _read_body(environ)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        request = classify(environ, body)
        if not request.writes:
            if request.service == "dynamodb":
                with self.dynamodb:
                    return list(self.app(environ, start_response))
            result = self.app(environ, start_response)
            return result
        status: list[str] = []

        def recording_start_response(code: str, headers: Any, *exc_info: Any) -> Any:
            status.append(code)
            return start_response(code, headers, *exc_info)

        record = request_record(environ, body)
        lock = self.dynamodb if request.service == "dynamodb" else contextlib.nullcontext()
        with self.cut.shared(), lock:
            response = list(self.app(environ, recording_start_response))
            # A refused write (a failed condition, a missing key) changed nothing.
            if status and int(status[0].split()[0]) < 400:
                self.journal.append(record)
        return response

    # -- restore and snapshots --------------------------------------------------------------

    def restore(self) -> str:
        """Load the snapshot, replay the journal after it, open a new segment. Returns what
        was restored, for the log."""
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        loaded = read_snapshot(self.folder)
        covered = 0
        if loaded:
            covered, state = loaded
            install(state)
        replayed = 0
        last = covered - 1
        for number, path in segments(self.folder):
            last = max(last, number)
            if number < covered:
                path.unlink(missing_ok=True)  # already in the snapshot
                continue
            for record in read_records(path):
                self._replay(record)
                replayed += 1
        self.journal = Journal(self.folder, last + 1)
        self._pending_snapshot = replayed > 0
        took = time.perf_counter() - started
        if not loaded and not replayed:
            return f"new state in {self.folder}"
        return (
            f"restored {self.folder} in {took:.2f} s "
            f"({'a snapshot and ' if loaded else ''}{replayed} journaled writes)"
        )

    def _replay(self, record: dict[str, Any]) -> None:
        def ignore(*_: Any) -> None:
            return None

        with contextlib.suppress(Exception):  # a write that fails now failed then or is moot
            for _chunk in self.app(replay_environ(record), ignore):
                pass

    def start_snapshots(self) -> None:
        threading.Thread(target=self._snapshot_loop, name="snapshots", daemon=True).start()

    def _snapshot_loop(self) -> None:
        while not self._stop.wait(1.0):
            journal = self.journal
            if journal is None:
                continue
            due = journal.records >= self.snapshot_records or (
                journal.records and time.monotonic() - self._last_snapshot >= self.snapshot_seconds
            )
            if due or self._pending_snapshot:
                self._pending_snapshot = False
                try:
                    self.snapshot_in_child()
                except Exception:
                    logger.exception("snapshot failed; the journal keeps every write")

    def snapshot_in_child(self) -> None:
        """Fork at a consistent cut; the child pickles while this process serves on."""
        assert self.journal is not None and self.folder is not None
        with self.cut.exclusive():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
                pid = os.fork()
            if pid == 0:  # the child: only pickling and writing, then out
                code = 1
                try:
                    write_snapshot(self.folder, self.journal.segment + 1, capture())
                    code = 0
                finally:
                    os._exit(code)
            covered = self.journal.rotate()
        _, status = os.waitpid(pid, 0)
        self._last_snapshot = time.monotonic()
        if os.waitstatus_to_exitcode(status) == 0:
            self.journal.remove_before(covered)
        else:
            logger.warning("snapshot child exited with %s; the journal is kept", status)

    def close(self) -> None:
        """The final snapshot, in this process, once the server has stopped."""
        self._stop.set()
        if self.journal is None or self.folder is None:
            return
        started = time.perf_counter()
        with self.cut.exclusive():
            covered = self.journal.rotate()
            for attempt in range(3):
                try:
                    size = write_snapshot(self.folder, covered, capture())
                    break
                except RuntimeError:  # a straggling receive changed a queue mid-pickle
                    if attempt == 2:
                        raise
            self.journal.close()
            self.journal.remove_before(covered)
        # The segment opened by rotate() is empty and covered: leave no file behind.
        for number, path in segments(self.folder):
            if number >= covered and path.stat().st_size == 0:
                path.unlink()
        logger.info(
            "state saved to %s (%.1f MB) in %.2f s",
            self.folder,
            size / 1e6,
            time.perf_counter() - started,
        )
