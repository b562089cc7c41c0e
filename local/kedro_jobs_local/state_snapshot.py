"""Snapshots of the embedded moto's kept backends (DynamoDB, SQS, S3, Scheduler and
EventBridge's rules): pickled whole (a restart loads them in a fraction of a second), safely
from a child forked at a consistent cut (locks made anew, S3 object bodies read without their
locks), in a file that says which journal segment it covers and which moto wrote it."""

from __future__ import annotations

import copyreg
import io
import os
import pickle  # our own files, in the user's own state folder
import threading
from pathlib import Path
from typing import Any

FORMAT = 1
PERSISTED = ("dynamodb", "sqs", "s3", "scheduler", "events")
SNAPSHOT = "snapshot.pickle"


class StateError(RuntimeError):
    """The state folder cannot be restored (say, written by another moto version)."""


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
