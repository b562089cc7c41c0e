"""`make dev`'s processes, kept running: each is started (and waited for until it is ready),
one that dies is restarted with one log line, one that keeps dying stops everything with a
clear message, and SIGINT, SIGTERM or SIGHUP stop them all, in order, leaving none behind.

Each child runs in its own process group, so a Ctrl-C meant for `make dev` reaches only the
supervisor, which stops the writers (consumers, then the API) before the emulator they write
to; and each asks the kernel to stop it should the supervisor itself be killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

logger = logging.getLogger("kedro_jobs_local")

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(BaseException):
    """A stop signal arrived. A BaseException, like KeyboardInterrupt: raised from a signal
    handler wherever the supervisor is, it must not be taken for an error by the code it
    interrupts (a boto3 call in the heartbeat's tick retried it, and the stop was lost)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StartFailed(Exception):
    """A child did not start at all (its own message says why)."""


class CrashLoop(Exception):
    """A child keeps dying: restarting it again would only hide why."""


def describe_exit(code: int | None) -> str:
    if code is None:
        return "running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def spawn(
    argv: list[str],
    *,
    ready: Callable[[], bool] | None = None,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
    output: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group; wait until `ready()` says so. A child that
    exits or never gets ready is stopped and reported. ``output``: a file descriptor for its
    stdout and stderr (None: this process's)."""
    process = subprocess.Popen(  # noqa: S603
        argv, start_new_session=True, env=env, stdout=output, stderr=output
    )
    try:
        deadline = time.monotonic() + timeout
        while ready is not None and not ready():
            if process.poll() is not None:
                raise RuntimeError(f"exited while starting ({describe_exit(process.returncode)})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout:.0f} s")
            time.sleep(0.1)
    except BaseException:
        terminate(process, 5.0)
        raise
    return process


def terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then after `timeout` SIGKILL to its whole process group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    if process.poll() is None:  # still there, so its group id is still its own
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@dataclass
class Child:
    name: str
    start: Callable[[], subprocess.Popen[bytes]]  # starts it and waits until it is ready
    stage: int = 0  # stopped after every child of a higher stage
    stop_timeout: float = 10.0
    after_restart: Callable[[], None] | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    exits: deque[float] = field(default_factory=deque)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    def __init__(self, *, max_restarts: int = 5, window: float = 60.0) -> None:
        self.max_restarts = max_restarts
        self.window = window
        self.children: list[Child] = []
        self._hurry = False
        self._previous: dict[int, Any] = {}

    # -- signals ----------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # The first signal unwinds whatever the supervisor was doing (like KeyboardInterrupt);
        # a second one, while it stops its children, makes it stop them at once.
        for sig in SIGNALS:
            signal.signal(sig, self._hurry_up)
        raise Stop(signum)

    def _hurry_up(self, _signum: int, _frame: FrameType | None) -> None:
        self._hurry = True
        logger.warning("stopping at once")

    def __enter__(self) -> Supervisor:
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self._hurry_up)
        try:
            self.shutdown()
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)

    # -- running ----------------------------------------------------------------------------

    def add(self, child: Child) -> Child:
        self.children.append(child)
        try:
            child.process = child.start()
        except RuntimeError as exc:
            raise StartFailed(f"{child.name} did not start: {exc}") from exc
        return child

    def watch(self, tick: Callable[[], None] | None = None, every: float = 5.0) -> None:
        """Until a signal (Stop) or a crash loop (CrashLoop): restart whatever dies, and call
        `tick` every `every` seconds."""
        next_tick = time.monotonic()
        while True:
            for child in self.children:
                if not child.alive():
                    self._restart(child)
            if tick and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + every
                tick()
            time.sleep(0.25)

    def _restart(self, child: Child) -> None:
        code = child.process.returncode if child.process else None
        reason = describe_exit(code)
        while True:
            now = time.monotonic()
            child.exits.append(now)
            while child.exits and now - child.exits[0] > self.window:
                child.exits.popleft()
            if len(child.exits) > self.max_restarts:
                raise CrashLoop(
                    f"{child.name} exited {len(child.exits)} times in {self.window:.0f} s "
                    f"(last: {reason}); stopping. Its output is above."
                )
            # At once the first time (heal quickly); then wait longer each time.
            delay = 0.0 if len(child.exits) == 1 else min(8.0, 2.0 ** (len(child.exits) - 2))
            logger.warning(
                "%s stopped (%s); restarting%s",
                child.name,
                reason,
                f" in {delay:.0f} s" if delay else "",
            )
            time.sleep(delay)
            try:
                child.process = child.start()
            except RuntimeError as exc:
                reason = f"did not start: {exc}"
                continue
            child.restarts += 1
            if child.after_restart:
                try:
                    child.after_restart()
                except Exception as exc:
                    logger.warning("after restarting %s: %s", child.name, exc)
            return

    # -- stopping ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop every child, highest stage first, each stage's children at once."""
        for stage in sorted({c.stage for c in self.children}, reverse=True):
            group = [c for c in self.children if c.stage == stage and c.process]
            for child in group:
                if child.alive():
                    with contextlib.suppress(ProcessLookupError):
                        child.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            for child in group:
                deadline = time.monotonic() + child.stop_timeout
                while child.alive() and time.monotonic() < deadline and not self._hurry:
                    time.sleep(0.05)
                assert child.process is not None
                terminate(child.process, 0)
        self.children.clear()
