"""Processes of the local stack die with the process that started them, however it ended."""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from kedro_jobs.core.errors import DependencyUnavailable

PR_SET_PDEATHSIG = 1
# What a call to an emulator that is away raises (directly, or as the functions' error).
_AWAY = (EndpointConnectionError, ConnectionClosedError, DependencyUnavailable)


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


def stack_process(
    parser: argparse.ArgumentParser, argv: list[str] | None, *, log: bool = True
) -> argparse.Namespace:
    """The command line of a process `make dev` starts (``parser`` with ``--parent`` added),
    and its start: it stops when that parent is gone, and (``log``) logs INFO lines, but
    only botocore's warnings."""
    parser.add_argument("--parent", type=int, help="stop when this process is gone")
    args = parser.parse_args(argv)
    starting()
    if args.parent:
        exit_with_parent(args.parent, signal.SIGTERM)
    if log:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("botocore").setLevel(logging.WARNING)
    return args


def starting() -> None:
    """A stack process starts: no garbage collections until `started()`. Its start-up
    (boto3, pydantic models, FastAPI, Kedro, moto's backends) allocates much and frees little,
    and each full collection walked the whole growing heap: ~30% of a start's CPU."""
    gc.disable()


def started() -> None:
    """Start-up is over: what it built lives as long as the process, so it is frozen out of
    the collector's sight (later collections, and the last one at exit, walk only what was
    allocated since), and collections resume."""
    gc.freeze()
    gc.enable()


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


class Stopped(BaseException):
    """A stop signal came while a task was under way (a BaseException: no task's own
    ``except Exception`` swallows it)."""


class StopSignals:
    """A local process's loop runs until SIGTERM, SIGINT or SIGHUP (a supervisor's stop, a
    terminal's Ctrl-C, a closed terminal) sets ``stopping``."""

    def __init__(self) -> None:
        self.stopping = False
        self._interruptible = False
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._stop)

    def _stop(self, *_: object) -> None:
        self.stopping = True
        if self._interruptible:
            self._interruptible = False
            raise Stopped

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A stop signal in this block raises `Stopped` at once. When `make dev` dies, the
        emulator goes with it, and a call to it under way would otherwise retry with
        back-off for seconds after the stop."""
        if self.stopping:
            raise Stopped
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False


def run_every(
    every: float, task: Callable[[], None], *, first_after: float, logger: logging.Logger
) -> None:
    """``task`` every ``every`` seconds (the first time ``first_after`` seconds from now)
    until a stop signal, which also cuts short a pass under way: a pass may be stopped
    anywhere, as a Lambda invocation may time out anywhere. A pass that fails is logged and
    the next one runs anyway, as a scheduled invocation that failed would be followed by the
    next."""
    signals = StopSignals()
    due = time.monotonic() + first_after
    while not signals.stopping:
        if time.monotonic() < due:
            time.sleep(0.2)
            continue
        due += every
        try:
            with signals.interruptible():
                task()
        except Stopped:
            return
        except _AWAY as exc:  # the emulator is restarting (make dev says so): a line will do
            logger.warning("%s failed (%s)", getattr(task, "__name__", "pass"), one_line(exc))
        except Exception:
            logger.exception("%s failed", getattr(task, "__name__", "pass"))


def one_line(exc: BaseException) -> str:
    """An error as one line of a log: its type and its message's first line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200]
