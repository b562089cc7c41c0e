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
import copyreg
import io
import logging
import os
import pickle  # our own files, in the user's own state folder
import struct
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from kedro_jobs.core.heartbeats import PREFIX as HEARTBEATS

logger = logging.getLogger("kedro_jobs_local.state")

FORMAT = 1
PERSISTED = ("dynamodb", "sqs", "s3")
SNAPSHOT = "snapshot.pickle"
JOURNAL = "journal.{:08d}.log"
_LENGTH = struct.Struct(">Q")

_DYNAMODB_READS = {
    "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable",
    "ListTables", "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource",
    "DescribeEndpoints", "DescribeLimits", "ListBackups", "ListGlobalTables", "ListExports",
    "ListImports", "DescribeGlobalTable", "DescribeContributorInsights",
    "DescribeKinesisStreamingDestination",
}  # fmt: skip
_SQS_READS = {
    "ReceiveMessage", "GetQueueAttributes", "GetQueueUrl", "ListQueues", "ListQueueTags",
    "ListDeadLetterSourceQueues", "ListMessageMoveTasks",
}  # fmt: skip


class StateError(RuntimeError):
    """The state folder cannot be restored (say, written by another moto version)."""


# -- which requests change what is kept -----------------------------------------------------


@dataclass(frozen=True)
class Request:
    service: str | None  # dynamodb, sqs, s3, another service, or None (moto's own API)
    writes: bool  # changes a persisted backend, so it is journaled


def _signing_service(environ: dict[str, Any]) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = auth.partition("Credential=")[2] or environ.get("QUERY_STRING", "")
    if not auth:  # a presigned URL carries its scope in the query
        credential = parse_qs(scope).get("X-Amz-Credential", [""])[0]
        scope = credential
    parts = scope.split(",")[0].split("/")
    return parts[3] if len(parts) >= 5 else None


def classify(environ: dict[str, Any], body: bytes | None = None) -> Request:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")
    if target.startswith("DynamoDB"):
        return Request("dynamodb", target.rpartition(".")[2] not in _DYNAMODB_READS)
    if target.startswith("AmazonSQS"):
        return Request("sqs", target.rpartition(".")[2] not in _SQS_READS)
    if path.startswith("/moto-api/"):
        return Request(None, method == "POST" and "reset" in path)
    service = _signing_service(environ)
    if service == "sqs":  # the older query protocol: the action is in the form body
        action = parse_qs((body or b"").decode("utf-8", "replace")).get("Action", [""])[0]
        return Request("sqs", action not in _SQS_READS)
    if service == "s3" and f"/{HEARTBEATS}" in path:
        # Consumers' heartbeats say what runs now: worth nothing after a restart (make dev
        # clears them at start), and journaling them would keep an idle stack snapshotting.
        return Request(service, False)
    if service in PERSISTED:
        return Request(service, method in {"PUT", "POST", "DELETE"})
    return Request(service, False)


# -- the journal ----------------------------------------------------------------------------

_ENVIRON_KEYS = (
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "RAW_URI", "REQUEST_URI",
    "CONTENT_TYPE", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "wsgi.url_scheme",
)  # fmt: skip


def request_record(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    kept = {k: v for k, v in environ.items() if k in _ENVIRON_KEYS or k.startswith("HTTP_")}
    kept.pop("HTTP_TRANSFER_ENCODING", None)  # the body is kept whole
    return {"environ": kept, "body": body}


def replay_environ(record: dict[str, Any]) -> dict[str, Any]:
    body: bytes = record["body"]
    return {
        **record["environ"],
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }


class Journal:
    """Numbered append-only segments of length-prefixed pickled requests."""

    def __init__(self, folder: Path, segment: int) -> None:
        self.folder = folder
        self.segment = segment
        self.records = 0  # in the current segment
        self._lock = threading.Lock()
        self._file = self._open(segment)

    def _open(self, segment: int) -> Any:
        return (self.folder / JOURNAL.format(segment)).open("ab")

    def append(self, record: dict[str, Any]) -> None:
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            # One write of length and data; flushed to the OS, which keeps it if we die
            # (not fsynced: a power cut may lose the last writes, as with any local database
            # in its default mode).
            self._file.write(_LENGTH.pack(len(data)) + data)
            self._file.flush()
            self.records += 1

    def rotate(self) -> int:
        """Start the next segment; returns its number (what a snapshot now covers)."""
        with self._lock:
            self._file.close()
            self.segment += 1
            self._file = self._open(self.segment)
            self.records = 0
            return self.segment

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def remove_before(self, segment: int) -> None:
        for number, path in segments(self.folder):
            if number < segment:
                path.unlink(missing_ok=True)


def segments(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in folder.glob("journal.*.log"):
        with contextlib.suppress(ValueError):
            found.append((int(path.name.split(".")[1]), path))
    return sorted(found)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    data = path.read_bytes()
    at = 0
    while at + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, at)
        start, end = at + _LENGTH.size, at + _LENGTH.size + length
        if end > len(data):
            break  # the last write was cut short when the process died: never acknowledged
        yield pickle.loads(data[start:end])  # noqa: S301 - written by us, above
        at = end


# -- snapshots of moto's backends -----------------------------------------------------------


def _backend_dicts() -> dict[str, Any]:
    from moto.backends import get_backend

    return {service: get_backend(service) for service in PERSISTED}  # type: ignore[call-overload]


def capture() -> dict[tuple[str, str, str], Any]:
    """Every persisted backend, keyed by (service, account, region)."""
    state = {}
    for service, backends in _backend_dicts().items():
        for account, regions in list(backends.items()):
            for region, backend in list(regions.items()):
                state[(service, account, region)] = backend
    return state


def install(state: dict[tuple[str, str, str], Any]) -> None:
    backends = _backend_dicts()
    for (service, account, region), backend in state.items():
        # dict.__setitem__ beneath moto's lazily-creating mapping: the restored backend.
        dict.__setitem__(backends[service][account], region, backend)
        if service == "s3":
            # moto keeps bucket names in one registry beside the backends (it finds a
            # bucket's owner there, and a name missing from it is free to create anew).
            for name in backend.buckets:
                backends["s3"].bucket_accounts[name] = (region, account)


def _read_spooled(buffer: Any) -> bytes:
    """The bytes of a SpooledTemporaryFile without moving its offset (after a fork, a file
    that rolled over to disk shares its offset with the server's own descriptor)."""
    if getattr(buffer, "closed", False):
        return b""
    inner = buffer._file  # no public way to read it without seeking
    if isinstance(inner, io.BytesIO):
        return inner.getvalue()
    fd = inner.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0)


def _rebuild_key(cls: type, state: dict[str, Any]) -> Any:
    key = cls.__new__(cls)
    key.__setstate__(state)
    return key


def _reduce_key(key: Any) -> tuple[Any, ...]:
    # moto's own __getstate__ reads the value under the key's lock, which a request thread
    # may have held when the server forked: read the buffer directly instead.
    state = {k: v for k, v in key.__dict__.items() if k not in {"lock", "_value_buffer"}}
    state["value"] = _read_spooled(key._value_buffer)
    return _rebuild_key, (type(key), state)


def _dispatch_table() -> dict[type, Any]:
    from moto.s3.models import FakeKey

    table: dict[type, Any] = dict(copyreg.dispatch_table)
    # Locks are made anew, unheld (after a fork, a request thread may have held one).
    table[type(threading.Lock())] = lambda _lock: (threading.Lock, ())
    table[type(threading.RLock())] = lambda _lock: (threading.RLock, ())
    # A restored Condition or Event starts with no waiters (they were request threads).
    table[threading.Condition] = lambda _c: (threading.Condition, ())
    table[threading.Event] = lambda _e: (threading.Event, ())
    table[FakeKey] = _reduce_key
    for sub in FakeKey.__subclasses__():
        table[sub] = _reduce_key
    return table


def _moto_version() -> str:
    import moto

    return str(moto.__version__)


def write_snapshot(folder: Path, segment: int, state: dict[tuple[str, str, str], Any]) -> int:
    """Pickle the backends to folder/snapshot.pickle atomically; returns its size in bytes."""
    tmp = folder / f".{SNAPSHOT}.{os.getpid()}"
    header = {"format": FORMAT, "moto": _moto_version(), "segment": segment}
    with tmp.open("wb") as out:
        pickle.dump(header, out, protocol=pickle.HIGHEST_PROTOCOL)
        pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = _dispatch_table()
        pickler.dump(state)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(folder / SNAPSHOT)
    return (folder / SNAPSHOT).stat().st_size


def read_snapshot(folder: Path) -> tuple[int, dict[tuple[str, str, str], Any]] | None:
    path = folder / SNAPSHOT
    if not path.exists():
        return None
    with path.open("rb") as src:
        try:
            header = pickle.load(src)  # noqa: S301 - our own file
        except Exception as exc:
            raise StateError(f"{path} cannot be read: {exc!r}") from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise StateError(f"{path} is not a snapshot of format {FORMAT}")
        try:
            state = pickle.load(src)  # noqa: S301
        except Exception as exc:
            raise StateError(
                f"{path} was written by moto {header.get('moto')} and cannot be read by "
                f"moto {_moto_version()}: {exc!r}"
            ) from exc
    return int(header["segment"]), state


# -- the WSGI middleware that keeps it all --------------------------------------------------


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
