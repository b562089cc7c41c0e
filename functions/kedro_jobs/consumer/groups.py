"""The consumer's side of a fanned-out job (docs/fan-out.md).

The delivery that claims a job whose pipeline has independent groups starts the job's Step
Functions execution instead of running it; the execution's messages come back to this
consumer: a group (claimed on its own, run, answered), the commit once every group has run
(the job's outputs published once, the job completed), or the discard after a group failed
or was cancelled (nothing committed, nothing left staged, the job failed or cancelled).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from kedro_jobs.consumer.claim import lease_seconds
from kedro_jobs.consumer.group_sink import GroupSink
from kedro_jobs.consumer.outcome import Recorder
from kedro_jobs.consumer.project import ProjectLoadFailed
from kedro_jobs.consumer.segments import NodeStats
from kedro_jobs.core.errors import DependencyUnavailable
from kedro_jobs.core.fanout import (
    GROUP_CANCELLED,
    GROUP_FAILED,
    GROUP_STOPPED,
    JOB_ENDED,
    Coordinator,
    FanOutTask,
    fit_plan,
    task_key,
    unfinished,
    with_estimates,
)
from kedro_jobs.core.liveness import dead_groups
from kedro_jobs.core.models import Job
from kedro_jobs.core.queue import JobQueue
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import TERMINAL
from kedro_jobs.core.store.groups import GroupClaimOutcome
from kedro_jobs.core.store.roles.groups import GroupJobs
from kedro_jobs.core.timeline import group_cap
from kedro_jobs.runner.types import CANCELLED_MESSAGE, RunOutcome, RunProgress, RunRequest

logger = Logger(service="kedro-jobs-consumer", child=True)

_ENDED = {"completed": "completed", "cancelled": "cancelled"}  # else "failed"


class GroupBusy(Exception):
    """The group is running under a live lease elsewhere: SQS delivers its message again."""


class TaskNotConfirmed(Exception):
    """The execution did not confirm the message's task token, yet the record says its task
    is still to do: SQS delivers the message again after a short backoff (an emulator's
    execution registers a task's heartbeats only after it sent the task's message)."""


class GroupRunner(Protocol):
    def fan_out_plan(self, request: RunRequest) -> dict[str, Any] | None: ...

    def run_group(
        self, request: RunRequest, plan: dict[str, Any], group_id: str, progress: Any, *,
        deadline: float,
    ) -> RunOutcome: ...  # fmt: skip

    def commit_groups(self, job_id: str, plan: dict[str, Any]) -> RunOutcome: ...

    def discard_groups(self, job_id: str, group_id: str | None = None) -> None: ...


def still_to_do(job: Job | None, task: FanOutTask) -> bool:
    """Whether the record says ``task`` is yet to be done: its job runs fanned out and, for a
    group's task, the group has not ended. A message for a task done (a duplicate after its
    answer) or of a job that ended is moot."""
    if job is None or job.fan_out is None or job.status in TERMINAL:
        return False
    if task.fanout != "group":
        return True
    group = (job.groups or {}).get(str(task.group))
    return group is not None and group.status in {"pending", "running"}


def request_for(job: Job) -> RunRequest:
    return RunRequest(job.id, job.pipeline_name, job.parameters, job.options)


class FanOut:
    def __init__(
        self,
        settings: Settings,
        *,
        store: GroupJobs,
        recorder: Recorder,
        coordinator: Coordinator,
        node_stats: NodeStats,
        runner: Callable[[], Any],
        queue: JobQueue | None = None,
    ) -> None:
        self.settings = settings
        self.queue = queue or JobQueue(settings.jobs_queue_url)
        self.node_stats = node_stats
        self.store = store
        self.recorder = recorder
        self.coordinator = coordinator
        self._runner = runner  # the project's runner (loaded on first use)

    @property
    def runner(self) -> GroupRunner:
        runner: GroupRunner = self._runner()
        return runner

    # -- the delivery that claimed the job ----------------------------------------------

    def start(self, job: Job, budget: float) -> bool:
        """Fan ``job`` out if it should: True when this delivery is done with it (the
        execution is started, or already was)."""
        if job.fan_out is not None:  # a delivery after the first: the same execution
            self.take_over_dead_groups(job)
            self.coordinator.start(job.id, job.fan_out)
            return True
        if job.options.fan_out is False or job.segments or job.checkpoint:
            return False
        if job.compute != "lambda":
            return False
        if not self.settings.signing_key.get_secret_value():
            # Without the deployment's key each container signs its hand-overs with a key of
            # its own, which the others would refuse: one worker runs the job.
            return False
        try:
            plan = self.runner.fan_out_plan(request_for(job))
        except ProjectLoadFailed:  # the one-worker run fails the job, saying why
            return False
        if plan is None:
            return False
        durations = self.node_stats.read(job.pipeline_name)
        plan = fit_plan(
            plan,
            durations,
            self.settings.fan_out_min_group_seconds,
            # A group gets an invocation of its own, about as long as this one.
            invocation_seconds=budget - self.settings.timeout_margin_seconds,
        )
        if plan is None:
            return False
        plan = with_estimates(plan, durations)
        # The job's lease, until its first group's claim extends it: the whole budget (the
        # execution's first messages are claimed within seconds).
        started = self.store.start_fan_out(
            job, plan, lease_seconds=float(self.settings.job_lease_seconds) + budget
        )
        if started is None:
            logger.warning("job changed hands before it fanned out; dropped")
            return True
        arn = self.coordinator.start(job.id, plan)
        logger.info(
            "job fans out",
            extra={"groups": len(plan["groups"]), "levels": len(plan["levels"]), "execution": arn},
        )
        self.recorder.count("JobsFannedOut")
        return True

    def take_over_dead_groups(self, job: Job) -> None:
        """Send again the message of each group of ``job`` running under a dead worker (its
        lease expired), with the task token its claim noted: the next consumer takes the
        group over, and its siblings are not touched. Called by every running group's
        heartbeat (so a sibling notices within a third of a lease) and by the delivery of a
        job the sweeper sent again (no group alive to notice: within a minute of the lease).
        Without it, the group's own message would come back only after the queue's
        visibility timeout (six times the function's timeout: 90 minutes by default)."""
        every = float(self.settings.job_lease_seconds)
        for group_id in dead_groups(job, time.time()):
            group = (job.groups or {})[group_id]
            if not group.token or not group.worker:
                continue  # claimed without a token noted: its own message comes back
            if not self.store.take_over_group(job.id, group_id, worker=group.worker, every=every):
                continue  # another consumer or sweep sent it just now
            task = FanOutTask(fanout="group", job_id=job.id, group=group_id, token=group.token)
            self.queue.send(task.model_dump_json(exclude_none=True))
            logger.warning(
                "group's worker died: its message is sent again",
                extra={"group": group_id, "dead_worker": group.worker},
            )
            self.recorder.count("GroupsTakenOver")

    # -- the execution's messages -------------------------------------------------------------

    def handle(self, task: FanOutTask, budget: float, invocation: str | None) -> None:
        try:
            self._handle(task, budget, invocation)
        except Exception as exc:
            # It comes back; should every delivery fail, the dead-letter function says why.
            with contextlib.suppress(DependencyUnavailable):
                self.store.note_task_error(
                    task.job_id, task_key(task), f"{type(exc).__name__}: {exc}"
                )
            raise

    def _handle(self, task: FanOutTask, budget: float, invocation: str | None) -> None:
        # Other systems may send to the jobs queue too: a task is acted on only if its token
        # is one the execution waits for (every task of the state machine takes heartbeats).
        live = self.coordinator.heartbeat(task.token)
        job = self.store.get(task.job_id)
        if not live:
            if still_to_do(job, task):
                # Early (moto's and LocalStack's Step Functions accept a task's heartbeats
                # only once its message is sent: a fast consumer can be there first), or
                # forged: either way it comes back, and a forged one ends on the dead-letter
                # queue having changed nothing. Dropped, an early one would leave the job
                # running until the task's HeartbeatSeconds.
                raise TaskNotConfirmed(f"{task.fanout} task of job {task.job_id} not confirmed")
            logger.warning("fan-out message without a live task token; dropped")
            return
        if job is None or job.fan_out is None:
            self.coordinator.fail(task.token, JOB_ENDED, f"Job {task.job_id} is not fanned out")
            return
        if task.fanout == "group":
            self._group(job, task, budget, invocation)
        elif task.fanout == "commit":
            self._commit(job, task, budget)
        else:
            self._discard(job, task)

    def _group(self, job: Job, task: FanOutTask, budget: float, invocation: str | None) -> None:
        group_id = str(task.group)
        worker = f"{invocation or 'local'}/{uuid.uuid4().hex[:8]}"
        lease = lease_seconds(self.settings, budget)
        claim = self.store.claim_group(
            job.id, group_id, worker=worker, lease_seconds=lease, token=task.token
        )
        if claim.outcome is GroupClaimOutcome.JOB_ENDED:
            self.coordinator.fail(task.token, JOB_ENDED, "The job ended before this group ran")
            return
        if claim.outcome is GroupClaimOutcome.BUSY:
            # Its worker may be alive (it answers, and this token dies) or not (its lease
            # runs out): the message comes back after a short backoff either way.
            raise GroupBusy(f"group {group_id} of job {job.id} is running elsewhere")
        if claim.outcome is GroupClaimOutcome.DONE and claim.job is not None:
            # It ran, but this execution still waits for it (a second execution after the
            # emulator restarted, say): the answer it was given before.
            self._answer_done(claim.job, group_id, task)
            return
        if claim.job is None:
            return
        assert claim.job.fan_out is not None
        sink = GroupSink(
            self.store, self.coordinator, task, worker, lease, siblings=self.take_over_dead_groups,
            cap=group_cap(len(claim.job.fan_out.get("groups", []))),
        )  # fmt: skip
        deadline = time.monotonic() + budget - self.settings.timeout_margin_seconds
        logger.info("group started", extra={"group": group_id})
        outcome = self.runner.run_group(
            request_for(claim.job), claim.job.fan_out, group_id, sink, deadline=deadline
        )
        if sink.lost:
            logger.warning("group was taken over by another delivery; its outcome is dropped")
            return
        known = self.node_stats.read(job.pipeline_name)
        self.node_stats.update(job.pipeline_name, known, outcome.node_durations)
        self._write_group_log(job, group_id, outcome)
        status = _ENDED.get(outcome.status, "failed")
        error = outcome.error_message if status != "completed" else None
        if status == "cancelled" and sink.stopped:  # not the user's cancel: say why
            error = GROUP_STOPPED
        if not self.store.end_group(
            job.id, group_id, worker=worker, status=status,
            completed=outcome.progress.completed, error=error,
            timeline=sink.ended(outcome.status),
        ):  # fmt: skip
            # Taken over since its last beat (its lease ran out: this worker stalled): the
            # new worker runs the group and answers; an answer from here would let the next
            # level read the hand-over it is writing again.
            logger.warning("group was taken over as its run ended; its outcome is dropped")
            return
        if status == "completed" and self._job_ended(job.id):
            # A sibling failed or a cancel ended the job while this group ran on to its end:
            # no commit will read its hand-over, and the job's discard may be past.
            self.runner.discard_groups(job.id, group_id)
        if status == "completed":
            self.coordinator.succeed(task.token, {"group": group_id})
        elif status == "cancelled" or sink.stopped:
            self.coordinator.fail(task.token, GROUP_CANCELLED, error or CANCELLED_MESSAGE)
        else:
            self.coordinator.fail(task.token, GROUP_FAILED, error or "The group failed")

    def _job_ended(self, job_id: str) -> bool:
        now = self.store.get(job_id)
        return now is None or now.status in TERMINAL

    def _answer_done(self, job: Job, group_id: str, task: FanOutTask) -> None:
        group = (job.groups or {}).get(group_id)
        if group is not None and group.status == "completed":
            self.coordinator.succeed(task.token, {"group": group_id})
        else:
            error = (group.error if group else None) or "The group did not complete"
            self.coordinator.fail(task.token, GROUP_FAILED, error)

    def _write_group_log(self, job: Job, group_id: str, outcome: RunOutcome) -> None:
        try:
            self.recorder.artifacts.put_text(f"logs/{job.id}/groups/{group_id}.log", outcome.log)
        except DependencyUnavailable as exc:
            logger.warning("group log not written", extra={"reason": exc.reason})

    def _group_logs(self, job: Job) -> str:
        parts = []
        for group in (job.fan_out or {}).get("groups", []):
            key = f"logs/{job.id}/groups/{group['id']}.log"
            try:
                text = self.recorder.artifacts.get_text(key) or ""
            except DependencyUnavailable:
                text = "(log not read)\n"
            parts.append(f"== group {group['id']} ({group['name']}) ==\n{text}")
        return "".join(parts)

    def _commit(self, job: Job, task: FanOutTask, budget: float) -> None:
        if job.status not in TERMINAL:  # else a commit delivered again after its record
            held, now = self._hold_for_commit(job, budget)
            if held is not None:
                assert held.fan_out is not None
                outcome = self.runner.commit_groups(held.id, held.fan_out)
                self._finish(held, outcome)
            elif now is not None:  # a cancel asked before the commit: nothing is published
                self._finish(now, RunOutcome("cancelled", None, CANCELLED_MESSAGE, "", 0.0))
        self.runner.discard_groups(job.id)  # only once the outcome is recorded
        self.coordinator.succeed(task.token)

    def _hold_for_commit(self, job: Job, budget: float) -> tuple[Job | None, Job | None]:
        """The job held for its commit (for the rest of this invocation); else, the job as
        read, still running with a cancel asked (or None: it ended). Raises GroupBusy if it
        changed hands otherwise: the commit's message comes back."""
        held = self.store.hold_for_commit(job, lease_seconds=budget)
        if held is not None:
            return held, None
        now = self.store.get(job.id)
        if now is None or now.status in TERMINAL:
            return None, None
        if now.cancel_requested:
            return None, now
        held = self.store.hold_for_commit(now, lease_seconds=budget)  # read on an old attempt
        if held is None:
            raise GroupBusy(f"job {job.id} changed hands before its commit")
        return held, None

    def _discard(self, job: Job, task: FanOutTask) -> None:
        # The job ends first, its hand-overs go after: a group still finishing its last node
        # meanwhile finds the job ended once it has saved its own, and removes it (_group).
        if job.status not in TERMINAL:
            failed = [g for g in (job.groups or {}).values() if g.status == "failed"]
            # The first group to fail is the job's error (the others may have stopped after).
            failed.sort(key=lambda g: g.ended_at or g.started_at or job.created_at)
            if job.cancel_requested:
                outcome = RunOutcome("cancelled", None, CANCELLED_MESSAGE, "", 0.0)
            else:
                why = failed[0].error if failed else None
                why = why or unfinished(task.failure, job.groups or {}, job.fan_out or {})
                outcome = RunOutcome("failed", None, why, "", 0.0)
            self._finish(job, outcome)
        self.runner.discard_groups(job.id)
        self.coordinator.succeed(task.token)

    def _finish(self, job: Job, outcome: RunOutcome) -> None:
        started = job.started_at.timestamp() if job.started_at else time.time()
        log = self._group_logs(job) + outcome.log
        groups = (job.groups or {}).values()
        done = sum(g.completed_nodes for g in groups if g.status == "completed")
        total = int((job.fan_out or {}).get("total_nodes", 0))
        progress = outcome.progress
        if outcome.status != "completed":
            progress = RunProgress(done, total, None)
        ended = RunOutcome(
            outcome.status, outcome.results, outcome.error_message, log, outcome.duration,
            progress=progress, outputs=outcome.outputs,
        )  # fmt: skip
        self.recorder.finish(job, ended, execution_time=time.time() - started)
