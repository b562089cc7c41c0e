"""Process helpers for the forked child (forked.py): tied to its parent's life, and reaped
without blocking past a grace."""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import time
from typing import Any


@functools.cache
def _libc() -> Any:
    """The C library, loaded once (and so already loaded in a child forked after)."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, argument: object) -> None:
    with contextlib.suppress(Exception):  # not Linux: do without
        _libc().prctl(option, argument)


def die_with_parent() -> None:
    """If the consumer dies (killed, out of memory), its job's code must not go on alone:
    ask Linux to SIGKILL this child then (prctl PR_SET_PDEATHSIG)."""
    parent = os.getppid()
    _prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG; elsewhere the parent's own kill applies
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


# What a child forked ahead for the next job is named while it waits (forked.py).
FORKED_AHEAD_NAME = b"kedro-jobs-next"


def process_name() -> bytes:
    """This process's name as /proc shows it (empty where there is no /proc)."""
    try:
        with open("/proc/self/comm", "rb") as comm:
            return comm.read().strip()
    except OSError:
        return b""


def set_process_name(name: bytes) -> None:
    """What /proc (and ps) show as this process's name (prctl PR_SET_NAME; Linux only)."""
    if name:
        _prctl(15, name[:15])  # 15 = PR_SET_NAME; 15 bytes at most


def wait_exit(pid: int, timeout: float) -> int | None:
    """Reap ``pid`` once it exits and return its wait status; None after ``timeout``."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (old kernel, not Linux): poll
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            time.sleep(0.002)
        return None
    try:
        if not select.select([fd], [], [], timeout)[0]:
            return None
    finally:
        os.close(fd)
    return os.waitpid(pid, 0)[1]
