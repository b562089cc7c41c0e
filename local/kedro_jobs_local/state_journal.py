"""The embedded moto's journal: which requests change the state that is kept, and each such
write appended (length-prefixed, pickled) before its response leaves, to be replayed at the
next start over the last snapshot (state_snapshot.py). SQS receives are not journaled: their
receipt handles and visibility clocks cannot be replayed faithfully."""

from __future__ import annotations

import contextlib
import io
import pickle  # our own files, in the user's own state folder
import struct
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from kedro_jobs.core.heartbeats import PREFIX as HEARTBEATS
from kedro_jobs_local.state_snapshot import PERSISTED

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

_EVENTS_WRITES = {
    "PutRule", "DeleteRule", "EnableRule", "DisableRule", "PutTargets", "RemoveTargets",
    "CreateEventBus", "DeleteEventBus", "PutPermission", "RemovePermission", "TagResource",
    "UntagResource",
}  # fmt: skip


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
    if target.startswith("AWSEvents"):
        # Rules and their targets are kept; the events put are delivered, not kept (replayed,
        # they would be delivered again).
        return Request("events", target.rpartition(".")[2] in _EVENTS_WRITES)
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
