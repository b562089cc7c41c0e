"""One job in a child process forked from the warm consumer.

Why a fork: a timeout or a crash kills only the child, no code of a stopped job runs into
the next invocation, and jobs share no state; the child starts with Kedro imported and the
project loaded. Lambda has no /dev/shm, so no multiprocessing: the child writes JSON lines
to a pipe (log lines, progress, the outcome) and reads the parent's replies ("go"/"stop")
from another. The child talks to nothing else (AWS clients are not fork-safe).

Handshake: after each node but the last, the child waits for the parent's reply, so a
cancel seen by that progress call stops the job before the next node. The start event is
not waited for: the claim has just found no cancel, so the start is reported only if the
first node is still running START_REPORT_DELAY_SECONDS later; a quicker first node's own
report supersedes it (one write less a job). A boundary's report that the control lets hold
back (a quick node next, soon after the last write: control.REPORT_QUIET_SECONDS) is
answered at once and held the same way. A reply "continue" stops the child at that
boundary to save a checkpoint (the control judged too little time left for the next node).
The parent enforces the deadline with SIGKILL to the child's process group (its subprocesses
too), past it by a bounded grace while a checkpoint begun before it is being saved, and reaps
the child whatever happened.

Forked ahead: forking the warm consumer (~130 MB) costs ~5-15 ms of a trivial job's start
here, copying its page tables. ``fork_ahead`` forks the next job's child while no job waits
(between batches), and the next run hands it its work through a pipe (pickled: a copy of
what a child forked then would hold) instead of forking. The child is the same either way: a
fresh process of this one, which runs one job and exits. Only while nothing a child inherits
could differ: the caller's ``token`` (its project, what it prepared before forking, the
environment) must be the one the child was forked with, else it is discarded and the run
forks as before; so is one that died, or a work that cannot be pickled. While it waits, the
child is named FORKED_AHEAD_NAME in /proc.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import pickle  # nosec B403 - only between this process and its own child
import select
import signal
import sys
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from kedro_jobs.runner.control import CONTINUED_MESSAGE, RunControl
from kedro_jobs.runner.isolation import Ended, Work, attempt
from kedro_jobs.runner.log import collect_logs, joined, log_line
from kedro_jobs.runner.process import (
    FORKED_AHEAD_NAME,
    die_with_parent,
    process_name,
    set_process_name,
    wait_exit,
)
from kedro_jobs.runner.types import CANCELLED_MESSAGE, RunProgress, StopRun

logger = logging.getLogger(__name__)

EXIT_GRACE_SECONDS = 2.0
START_REPORT_DELAY_SECONDS = 0.25
_CHILD_CRASH_CODE = 70


def _fork() -> int:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would write the parent's buffered output again
    # The warm heap goes to the collector's permanent generation: the child's GC then does
    # not touch (and copy) the parent's pages.
    gc.freeze()
    return os.fork()


def run_forked(work: Work, control: RunControl, token: Hashable | None = None) -> Ended:
    """Run ``work`` in a child: the one forked ahead with ``token``, else one forked now."""
    pid, events_r, replies_w = _take_ahead(work, token) or _start_child(work)
    parent = _Parent(pid, events_r, replies_w, control)
    ended = False
    try:
        outcome = parent.supervise()
        ended = parent.ended
        return outcome
    finally:
        if ended:
            # The child sent its outcome and is exiting; tearing down its copy of the heap
            # takes ~10 ms: reap it (and kill what it left running) off the job's path.
            threading.Thread(target=parent.close, name=f"reap-{pid}", daemon=True).start()
        else:
            parent.close()


def _start_child(work: Work | int, close_in_child: tuple[int, ...] = ()) -> tuple[int, int, int]:
    """Fork a job's child, to run ``work``, or (forked ahead) the work it will read from that
    pipe. Its pid and the parent's ends of its pipes (events from it, replies to it)."""
    events_r, events_w = os.pipe()
    replies_r, replies_w = os.pipe()
    pid = _fork()
    if pid == 0:  # pragma: no cover - the child; its effects are what the tests check
        code = _CHILD_CRASH_CODE
        try:
            for fd in (events_r, replies_w, *close_in_child):
                os.close(fd)
            child = _Child(events_w, replies_r)
            child.enter()
            received = _receive(work) if isinstance(work, int) else work
            if received is not None:  # else it was let go
                child.main(received)
            code = 0
        finally:
            os._exit(code)
    with contextlib.suppress(OSError):  # the child does the same; whichever runs first
        os.setpgid(pid, pid)
    os.close(events_w)
    os.close(replies_r)
    return pid, events_r, replies_w


# -- the child forked ahead ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Ahead:
    pid: int
    events: int  # the parent's ends of the child's pipes, as run_forked makes them
    replies: int
    work: int  # where the work is written, then closed
    token: Hashable


_ahead: _Ahead | None = None
# What Lambda's runtime sets anew for each invocation (its X-Ray trace header): not part of a
# child's token (it would be let go at every invocation), but sent with the work instead.
INVOCATION_ENV = ("_X_AMZN_TRACE_ID",)
_SIZE_BYTES = 8  # the work's size, before it
_ahead_lock = threading.Lock()  # a child forked ahead is taken by one run only


def fork_ahead(token: Hashable) -> bool:
    """Fork the next job's child now, to wait for the work of a run with ``token`` (see the
    module's docstring). Only from the main thread: Linux kills a child whose forking thread
    ends (die_with_parent). Returns whether a child waits."""
    global _ahead
    if threading.current_thread() is not threading.main_thread():
        return False
    with _ahead_lock:
        ahead, _ahead = _ahead, None
    if ahead is not None:
        if ahead.token == token and _waiting(ahead):
            _ahead = ahead
            return True
        _discard(ahead)
    work_r, work_w = os.pipe()
    pid, events_r, replies_w = _start_child(work_r, close_in_child=(work_w,))
    os.close(work_r)
    _ahead = _Ahead(pid, events_r, replies_w, work_w, token)
    return True


def discard_ahead() -> None:
    """Let the child forked ahead go, if there is one (it exits; it is reaped meanwhile)."""
    global _ahead
    with _ahead_lock:
        ahead, _ahead = _ahead, None
    if ahead is not None:
        _discard(ahead)


def _receive(fd: int) -> Work | None:  # pragma: no cover - runs in the child
    """The work, its size first (not the end of the pipe, which a process forked meanwhile
    may hold open); None if the pipe ends first (the child was let go). Meanwhile the child
    is named FORKED_AHEAD_NAME."""
    name = process_name()
    set_process_name(FORKED_AHEAD_NAME)
    data = b""
    size: int | None = None
    while size is None or len(data) < size:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        data += chunk
        if size is None and len(data) >= _SIZE_BYTES:
            size = _SIZE_BYTES + int.from_bytes(data[:_SIZE_BYTES], "big")
    os.close(fd)
    set_process_name(name)
    work: Work
    work, invocation = pickle.loads(data[_SIZE_BYTES:])  # noqa: S301  # nosec B301 - our parent's
    for name, value in invocation.items():  # as a child forked for this job would see them
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return work


def _take_ahead(work: Work, token: Hashable | None) -> tuple[int, int, int] | None:
    """The child forked ahead, given ``work``: its pid and the parent's ends of its pipes;
    None when there is none that may take it (then it is discarded)."""
    global _ahead
    with _ahead_lock:
        ahead, _ahead = _ahead, None
    if ahead is None:
        return None
    if token is None or ahead.token != token:
        _discard(ahead)
        return None
    try:
        invocation = {name: os.environ.get(name) for name in INVOCATION_ENV}
        payload = pickle.dumps((work, invocation), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # a work of closures (tests): forked as it is
        logger.debug("work not picklable; forking for it", exc_info=True)
        _discard(ahead)
        return None
    try:
        view = memoryview(len(payload).to_bytes(_SIZE_BYTES, "big") + payload)
        while view:
            view = view[os.write(ahead.work, view) :]
    except OSError:  # it is gone (killed while it waited)
        _discard(ahead)
        return None
    os.close(ahead.work)
    return ahead.pid, ahead.events, ahead.replies


def _waiting(ahead: _Ahead) -> bool:
    """Still alive (not reaped here: _discard does that)."""
    try:
        return os.waitid(os.P_PID, ahead.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def _discard(ahead: _Ahead) -> None:
    """Let it go: the end of its work pipe ends it; it is reaped off the caller's path."""
    with contextlib.suppress(OSError):
        os.close(ahead.work)

    def reap() -> None:
        with contextlib.suppress(ChildProcessError):
            if wait_exit(ahead.pid, EXIT_GRACE_SECONDS) is None:
                _kill(ahead.pid)
                os.waitpid(ahead.pid, 0)
        for fd in (ahead.events, ahead.replies):
            with contextlib.suppress(OSError):
                os.close(fd)

    threading.Thread(target=reap, name=f"reap-{ahead.pid}", daemon=True).start()


def _kill(pid: int) -> None:
    """SIGKILL a child and anything it started (its process group)."""
    for send in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            send(pid, signal.SIGKILL)


# -- the child ---------------------------------------------------------------------------------


class _Child:
    def __init__(self, events: int, replies: int) -> None:
        self.events = os.fdopen(events, "w", buffering=1)
        self.replies = replies
        self.reply_buffer = b""
        self.owed = 0  # replies the parent still owes (one per progress event but the last)
        self.must_wait = False  # a node has finished: wait for every owed reply
        self.stop: StopRun | None = None
        self.progress = RunProgress()

    def enter(self) -> None:
        """The child's own process: tied to its parent's life, in a group of its own."""
        die_with_parent()
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)  # its own group, so a kill reaches the job's subprocesses too
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    def main(self, work: Work) -> None:
        def log(line: str) -> None:
            self.send(t="log", line=line)

        with collect_logs(log):
            ended = attempt(work, self, lambda: self.progress, log)
        self.send(t="end", **ended.to_event())
        self.events.flush()

    def send(self, **event: Any) -> None:
        self.events.write(json.dumps(event) + "\n")

    # RunEvents
    def started(self, completed: int, total: int, first: str | None) -> None:
        self._progress(completed, total, first, start=True)

    def node_finished(
        self, completed: int, total: int, upcoming: str | None, node: str, seconds: float
    ) -> None:
        self._progress(completed, total, upcoming, node=node, seconds=seconds)
        self.must_wait = True

    def checkpointing(self) -> None:
        self.send(t="checkpoint")

    def stop_reason(self) -> StopRun | None:
        while self.owed and self.stop is None:
            if not self.must_wait and not select.select([self.replies], [], [], 0)[0]:
                break
            self._read_reply()
        self.must_wait = False
        return self.stop

    def _progress(self, completed: int, total: int, current: str | None, **more: Any) -> None:
        self.progress = RunProgress(completed, total, current)
        self.send(t="progress", completed=completed, total=total, current=current, **more)
        # The parent answers every event, the last node's too: a fanned-out group asks, before
        # it saves its hand-over, whether it still holds its group (handover.execute_group).
        self.owed += 1

    def _read_reply(self) -> None:
        while b"\n" not in self.reply_buffer:
            chunk = os.read(self.replies, 64)
            if not chunk:  # the parent is gone: nobody wants this job's result
                self.stop = StopRun("cancelled", "The consumer stopped answering")
                return
            self.reply_buffer += chunk
        reply, self.reply_buffer = self.reply_buffer.split(b"\n", 1)
        self.owed -= 1
        if reply == b"stop":
            self.stop = StopRun("cancelled", CANCELLED_MESSAGE)
        elif reply == b"continue":
            self.stop = StopRun("continued", CONTINUED_MESSAGE)


# -- the parent --------------------------------------------------------------------------------


class _Parent:
    """Reads the child's events until it ends, dies, or runs out of time."""

    def __init__(self, pid: int, events: int, replies: int, control: RunControl) -> None:
        self.pid = pid
        self.events = events
        self.replies = replies
        self.control = control
        self.lines: list[str] = []
        self.buffer = b""
        self.exit_status: int | None = None
        self.ended = False  # the child reported its outcome
        # A report held back until START_REPORT_DELAY_SECONDS have passed (the start, or a
        # boundary the control let go on at once), and whether its reply is still owed.
        self.held: dict[str, Any] | None = None
        self.held_due = 0.0
        self.held_owed = False

    def supervise(self) -> Ended:
        while True:
            now = time.monotonic()
            remaining = self.control.kill_remaining()
            if remaining <= 0:
                return self.timed_out()
            # The consumer's heartbeat: a stop it asks for is answered at the next boundary.
            self.control.beat()
            wait = min(remaining, 1.0)
            if self.held is not None:
                if now >= self.held_due:
                    held, self.held = self.held, None
                    self.report(held, reply=self.held_owed)
                    continue
                wait = min(wait, self.held_due - now)
            ready, _, _ = select.select([self.events], [], [], wait)
            if not ready:
                continue
            chunk = os.read(self.events, 65536)
            if not chunk:  # the child is gone without an outcome
                return self.died()
            self.buffer += chunk
            while b"\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\n", 1)
                done = self.handle(json.loads(raw))
                if done is not None:
                    return done

    def handle(self, event: dict[str, Any]) -> Ended | None:
        kind = event["t"]
        if kind == "log":
            self.lines.append(event["line"])
        elif kind == "progress":
            if event.get("node"):
                self.control.node_done(event["node"], event["seconds"])
            completed, total, current = event["completed"], event["total"], event["current"]
            self.control.note(completed, total, current)
            if event.get("start") and completed < total:
                self.hold(event, owed=True)
                return None
            if self.held is not None:  # superseded by this report; answer it if owed
                if self.held_owed:
                    self.reply(stop=False)
                self.held = None
            if completed < total and self.control.may_hold():
                self.control.hold(completed, total, current)
                self.reply(stop=False)
                self.hold(event, owed=False)
                return None
            self.report(event)
        elif kind == "checkpoint":
            self.control.checkpoint_started = time.monotonic()
        elif kind == "end":
            self.ended = True
            return Ended.from_event(event, joined(self.lines))
        return None

    def hold(self, event: dict[str, Any], *, owed: bool) -> None:
        self.held = event
        self.held_due = time.monotonic() + START_REPORT_DELAY_SECONDS
        self.held_owed = owed

    def report(self, event: dict[str, Any], *, reply: bool = True) -> None:
        """Tell the control (and so the sink); answer the child, unless it was answered when
        the report was held (a stop learnt now is answered at the next boundary)."""
        completed, total = event["completed"], event["total"]
        stop = self.control.report(completed, total, event["current"])
        if reply:  # the last node's too: a fanned-out group asks before saving its hand-over
            self.reply(
                stop=stop, go_on=stop or completed >= total or not self.control.should_continue()
            )

    def reply(self, *, stop: bool, go_on: bool = True) -> None:
        """ "stop" (a cancel), "continue" (checkpoint at this boundary) or "go"."""
        answer = b"stop\n" if stop else b"go\n" if go_on else b"continue\n"
        with contextlib.suppress(BrokenPipeError):
            os.write(self.replies, answer)

    def timed_out(self) -> Ended:
        self.kill()
        message = str(self.control.timed_out())
        logger.warning("job stopped: %s", message)
        self.lines.append(log_line("ERROR", "kedro_jobs", message))
        return Ended("timed_out", message, log=joined(self.lines))

    def died(self) -> Ended:
        status = self.reap(EXIT_GRACE_SECONDS)
        if os.WIFSIGNALED(status):
            how = f"was killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            how = f"exited with code {os.WEXITSTATUS(status)}"
        message = f"The job's worker process died before the pipeline finished: it {how}"
        logger.error("job failed: %s", message)
        self.lines.append(log_line("ERROR", "kedro_jobs", message))
        return Ended("failed", message, log=joined(self.lines))

    def kill(self) -> None:
        """SIGKILL the child and anything it started (its process group)."""
        _kill(self.pid)

    def reap(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for the child to exit, else kill it; reap it either
        way, and kill whatever it left running. Returns its wait status."""
        if self.exit_status is None:
            status = wait_exit(self.pid, grace)
            if status is None:
                self.kill()
                status = os.waitpid(self.pid, 0)[1]
            self.exit_status = status
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)  # subprocesses the job left behind
        return self.exit_status

    def close(self) -> None:
        self.reap(EXIT_GRACE_SECONDS)
        for fd in (self.events, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)
