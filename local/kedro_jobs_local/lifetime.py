"""Processes of the local stack die with the process that started them, however it ended."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def exit_with_parent(parent: int | None = None, sig: int = signal.SIGTERM) -> None:
    """Receive `sig` when the parent process is gone (even if it was SIGKILLed).

    On Linux the kernel sends it (prctl PR_SET_PDEATHSIG); elsewhere a thread watches the
    parent id. `parent` is the pid expected as parent: if it is already gone (it died before
    this process got here), the signal comes at once.
    """
    parent = parent or os.getppid()
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))
    else:
        threading.Thread(target=_watch, args=(parent, sig), daemon=True).start()
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


def _watch(parent: int, sig: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), sig)


def parent_is_make() -> bool:
    """Started by `make dev`: make forwards TERM to its child but not HUP, so the child has
    to notice make going itself."""
    try:
        with open(f"/proc/{os.getppid()}/comm") as comm:
            return comm.read().strip() in {"make", "gmake"}
    except OSError:
        return False
