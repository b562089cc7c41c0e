"""What a task backend (ECS Fargate) is to the consumer, locally: a job on one (``compute:
fargate``) runs as a process of the task's own entry point (``python -m
kedro_jobs.consumer.task <job-id>``), started by the poller that took its message, with the
consumer function's environment.

The poller owns these processes: it reaps those that ended between polls and stops the rest
when it stops (SIGTERM, as ECS StopTask sends, then SIGKILL). Each also asks the kernel for
SIGTERM should the poller die without stopping it (prctl PR_SET_PDEATHSIG), so make dev
leaves none behind, however it ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time

from kedro_jobs.core.compute import TASK_MODULE, task_command

logger = logging.getLogger("kedro_jobs_local.tasks")

TASK_ID_ENV = "KEDRO_JOBS_TASK_ID"  # the task's own fallback (local:<pid>) names it instead
STOP_GRACE_SECONDS = 3.0  # a task unwinds at SIGTERM in well under a second


def _die_with_poller() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class LocalTaskLauncher:
    """Starts one task process per job (or per group of a fanned-out job); a repeated
    token returns the task it started."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self.running: dict[str, subprocess.Popen[bytes]] = {}  # task id -> process
        self._by_token: dict[str, str] = {}

    def launch(
        self, job_id: str, *, token: str, group: str | None = None, claim: str | None = None
    ) -> str:
        self.reap()
        known = self._by_token.get(token)
        if known is not None and known in self.running:
            return known
        env = {k: v for k, v in os.environ.items() if k != TASK_ID_ENV}
        # In the poller's process group: a group kill by the supervisor reaches it too.
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [self.python, "-m", TASK_MODULE, *task_command(job_id, group, claim)],
            env=env,
            preexec_fn=_die_with_poller,  # the poller runs no threads: preexec_fn is safe
        )
        task = f"local:{process.pid}"
        self.running[task] = process
        self._by_token[token] = task
        logger.info(
            "task %s started for job %s%s", task, job_id, f" group {group}" if group else ""
        )
        return task

    def reap(self) -> None:
        """Collect the tasks that ended (no zombies while the poller runs)."""
        for task, process in list(self.running.items()):
            code = process.poll()
            if code is not None:
                del self.running[task]
                logger.info("task %s ended with exit status %s", task, code)
        live = set(self.running)
        self._by_token = {t: task for t, task in self._by_token.items() if task in live}

    def stop_all(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM every running task, SIGKILL those still there after ``grace``; reap all."""
        for process in self.running.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.running.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
        self.reap()


_launchers: list[LocalTaskLauncher] = []


def install_local_tasks() -> LocalTaskLauncher:
    """The consumer of this process (the handler's) launches local tasks for every task
    backend (core/compute/), not ECS ones."""
    from kedro_jobs.consumer.handler import consumer
    from kedro_jobs.core.compute import task_backends

    launcher = LocalTaskLauncher()
    consumer().dispatcher.launchers = {b.name: launcher for b in task_backends()}
    _launchers.append(launcher)
    return launcher


def reap_all() -> None:
    for launcher in _launchers:
        launcher.reap()


def stop_all() -> None:
    for launcher in _launchers:
        launcher.stop_all()
