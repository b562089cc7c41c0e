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
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from kedro_jobs.consumer.claim import lease_seconds
from kedro_jobs.consumer.group_sink import GroupSink
from kedro_jobs.consumer.outcome import Recorder
from kedro_jobs.consumer.project import ProjectLoadFailed
from kedro_jobs.consumer.segments import NodeStats
from kedro_jobs.core.compute import TaskBackend, TaskLauncher, long_group_backend
from kedro_jobs.core.compute import backend as compute_backend
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
from kedro_jobs.core.models import GroupRun, Job, utcnow
from kedro_jobs.core.queue import JobQueue
from kedro_jobs.core.rerun import kept_groups, kept_groups_fields
from kedro_jobs.core.settings import Settings
from kedro_jobs.core.states import TERMINAL
from kedro_jobs.core.store.groups import GroupClaimOutcome
from kedro_jobs.core.store.roles.groups import GroupJobs
from kedro_jobs.core.timeline import group_cap
from kedro_jobs.runner.types import CANCELLED_MESSAGE, RunOutcome, RunProgress, RunRequest

logger = Logger(service="kedro-jobs-consumer", child=True)

_ENDED = {"completed": "completed", "cancelled": "cancelled"}  # else "failed"
# How long a group's task has to start and take the group over from the claim its
# dispatching consumer made (a Fargate task pulls the image first: a minute or two); after
# that its lease has run out and the group is sent again, as a dead worker's.
TASK_START_SECONDS = 600
DISPATCHED = "dispatch"  # the prefix of a dispatching consumer's claim: dispatch:fargate/ab12


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
        deadline: float, may_move: bool = False,
    ) -> RunOutcome: ...  # fmt: skip

    def commit_groups(self, job_id: str, plan: dict[str, Any]) -> RunOutcome: ...

    def discard_groups(
        self, job_id: str, group_id: str | None = None, *, keep: Collection[str] = ()
    ) -> None: ...

    def handovers(self, job_id: str) -> str: ...


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


def rerun_plan(job: Job, fresh: dict[str, Any]) -> dict[str, Any] | None:
    """A rerun from failure of a fanned-out job fans out with the stopped job's plan (its
    groups, so the kept hand-overs fit) and a save version of its own (``fresh``'s: the
    rerun commits one version, its own, as a one-worker rerun does). None if the pipeline's
    nodes changed since (a new deployment): one worker then runs every node."""
    kept = job.reuse_plan or {}

    def nodes(plan: dict[str, Any]) -> set[str]:
        return {n for g in plan.get("groups", []) for n in g.get("nodes", [])}

    if nodes(kept) != nodes(fresh):
        logger.warning("the pipeline changed since the job it reruns: one worker runs it all")
        return None
    return {**kept, "save_version": fresh["save_version"]}


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
        launchers: Callable[[], Mapping[str, TaskLauncher]] = dict,
    ) -> None:
        self.settings = settings
        # The task backends' launchers this deployment offers (core/compute/), read at each
        # use: a long group runs as a task of one (make dev swaps in local ones).
        self._launchers = launchers
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
        if job.reuse_plan is not None:
            plan = rerun_plan(job, plan)
        else:
            long_groups = long_group_backend(self._launchers())
            plan = fit_plan(
                plan,
                durations,
                self.settings.fan_out_min_group_seconds,
                # A group gets an invocation of its own, about as long as this one.
                invocation_seconds=budget - self.settings.timeout_margin_seconds,
                # A group too long for one runs as a task there (none offered: one worker).
                long_groups=long_groups.name if long_groups else None,
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
        where = self._task_backend((job.groups or {}).get(group_id))
        if where is not None:
            self._dispatch(job, task, where)
            return
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
        # One that outlives this invocation goes on as a task, where a backend takes them.
        mover = long_group_backend(self._launchers())
        self._run_claimed(claim.job, task, worker, lease, budget, mover=mover)

    def _run_claimed(
        self, job: Job, task: FanOutTask, worker: str, lease: float, budget: float, *,
        mover: TaskBackend | None = None,
    ) -> str:  # fmt: skip
        """Run the group ``worker`` claimed, record its end and answer its task. Returns
        what became of it (the group's status; "lost": taken over meanwhile; "moved": it
        outlived its invocation and goes on as a task of ``mover``)."""
        group_id = str(task.group)
        assert job.fan_out is not None
        sink = GroupSink(
            self.store, self.coordinator, task, worker, lease, siblings=self.take_over_dead_groups,
            cap=group_cap(len(job.fan_out.get("groups", []))),
        )  # fmt: skip
        deadline = time.monotonic() + budget - self.settings.timeout_margin_seconds
        logger.info("group started", extra={"group": group_id})
        outcome = self.runner.run_group(
            request_for(job), job.fan_out, group_id, sink, deadline=deadline,
            may_move=mover is not None,
        )  # fmt: skip
        if sink.lost:
            logger.warning("group was taken over by another delivery; its outcome is dropped")
            return "lost"
        known = self.node_stats.read(job.pipeline_name)
        self.node_stats.update(job.pipeline_name, known, outcome.node_durations)
        if outcome.status == "timed_out" and mover is not None:
            return self._move(job, task, worker, mover, sink)
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
            return "lost"
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
        return status

    # -- a group that runs as a task of a task backend (Fargate) ---------------------------

    def _task_backend(self, entry: GroupRun | None) -> TaskBackend | None:
        """The task backend the group's entry names, if this deployment launches its tasks
        (else None: the group runs in this invocation, as any group)."""
        if entry is None or entry.compute is None:
            return None
        where = compute_backend(entry.compute)
        if not isinstance(where, TaskBackend):
            return None
        if where.name not in self._launchers():
            logger.warning("group's backend not offered here; it runs in this invocation",
                           extra={"compute": where.name})  # fmt: skip
            return None
        return where

    def _dispatch(self, job: Job, task: FanOutTask, where: TaskBackend) -> None:
        """Claim the group for a task of ``where`` and start that task, which takes the
        group over from this claim (``run_task``), runs it and answers. This delivery does
        not answer: the task (or, if it never starts or dies, the delivery that takes the
        group over once its lease ran out) does."""
        group_id = str(task.group)
        claim_id = f"{DISPATCHED}:{where.name}/{uuid.uuid4().hex[:8]}"
        claim = self.store.claim_group(
            job.id, group_id, worker=claim_id, lease_seconds=float(TASK_START_SECONDS),
            token=task.token, compute=where.name,
        )  # fmt: skip
        if claim.outcome is GroupClaimOutcome.JOB_ENDED:
            self.coordinator.fail(task.token, JOB_ENDED, "The job ended before this group ran")
            return
        if claim.outcome is GroupClaimOutcome.BUSY:
            # Its task runs it (and answers); should it die, its lease runs out and the group
            # is sent again: this duplicate need not come back for the hours a task may run.
            logger.info("group's task is running; duplicate message dropped",
                        extra={"group": group_id})  # fmt: skip
            return
        if claim.outcome is GroupClaimOutcome.DONE and claim.job is not None:
            self._answer_done(claim.job, group_id, task)
            return
        if claim.job is None:
            return
        self._launch(job.id, group_id, claim_id, where)
        self.recorder.count("GroupsDispatched")

    def _launch(self, job_id: str, group_id: str, claim_id: str, where: TaskBackend) -> None:
        """Start the task that takes the group over from ``claim_id``."""
        launcher = self._launchers()[where.name]
        try:
            ident = launcher.launch(job_id, token=claim_id, group=group_id, claim=claim_id)
        except Exception as exc:
            # The claim's lease ends now: the message, back after a short backoff, claims the
            # group again and asks for another task.
            self.store.pass_group(job_id, group_id, worker=claim_id, to=claim_id,
                                  lease_seconds=0.0)  # fmt: skip
            if isinstance(exc, DependencyUnavailable):
                raise
            raise DependencyUnavailable(where.dependency, f"{type(exc).__name__}: {exc}") from exc
        logger.info("group dispatched to a task",
                    extra={"group": group_id, "task": ident, "compute": where.name})  # fmt: skip

    def _move(
        self, job: Job, task: FanOutTask, worker: str, where: TaskBackend, sink: GroupSink
    ) -> str:
        """The group outlived its invocation (stopped at the deadline): it goes on as a task
        of ``where``, run again from its first node (a group keeps no checkpoint between its
        nodes), with the same task token; this invocation does not answer. Its record says
        so: ``compute`` the backend, one more of its ``runs``."""
        group_id = str(task.group)
        claim_id = f"{DISPATCHED}:{where.name}/{uuid.uuid4().hex[:8]}"
        timeline = sink.ended("timed_out")
        moved = self.store.pass_group(
            job.id, group_id, worker=worker, to=claim_id, lease_seconds=float(TASK_START_SECONDS),
            compute=where.name, timeline=timeline, again=True,
        )  # fmt: skip
        if moved.outcome is GroupClaimOutcome.JOB_ENDED:
            # A cancel asked (or the job ended) as the group stopped: it ends cancelled.
            self.store.end_group(job.id, group_id, worker=worker, status="cancelled",
                                 completed=sink.completed, error=CANCELLED_MESSAGE,
                                 timeline=timeline)  # fmt: skip
            self.coordinator.fail(task.token, GROUP_CANCELLED, CANCELLED_MESSAGE)
            return "cancelled"
        if moved.outcome is not GroupClaimOutcome.CLAIMED:
            return "lost"
        logger.warning("group outlived its invocation: it goes on as a task",
                       extra={"group": group_id, "compute": where.name})  # fmt: skip
        self._launch(job.id, group_id, claim_id, where)
        self.recorder.count("GroupsMoved")
        return "moved"

    def run_task(self, job_id: str, group_id: str, *, claim: str, task_id: str) -> str:
        """One group as a task (``python -m kedro_jobs.consumer.task <job-id> --group <id>
        --claim <claim>``): take the group over from the dispatching consumer's ``claim``,
        run it with the task's budget, beat the execution's heartbeat, keep the group's
        lease, write its hand-over and answer, as an invocation does. Returns the group's
        status, "lost" (taken over while it ran), or why it did not run."""
        job = self.store.get(job_id)
        entry = ((job.groups or {}) if job else {}).get(group_id)
        if job is None or job.fan_out is None or entry is None or not entry.token:
            return "not_found"
        where = compute_backend(entry.compute)
        if not isinstance(where, TaskBackend):
            return "not_found"
        budget = where.task_seconds(self.settings)
        task = FanOutTask(fanout="group", job_id=job_id, group=group_id, token=entry.token)
        worker = f"{task_id}/{uuid.uuid4().hex[:8]}"
        lease = lease_seconds(self.settings, budget)
        taken = self.store.pass_group(job_id, group_id, worker=claim, to=worker,
                                      lease_seconds=lease)  # fmt: skip
        if taken.outcome is GroupClaimOutcome.JOB_ENDED:
            # Cancelled (or failed by a sibling) while the task started: the group ends
            # cancelled, as a pending group's claim would find it.
            why = CANCELLED_MESSAGE
            self.store.end_group(job_id, group_id, worker=claim, status="cancelled",
                                 completed=0, error=why)  # fmt: skip
            self.coordinator.fail(task.token, GROUP_CANCELLED, why)
            return "job_ended"
        if taken.outcome is not GroupClaimOutcome.CLAIMED or taken.job is None:
            # Taken over (this task started after its claim's lease ran out) or ended.
            return str(taken.outcome.value)
        return self._run_claimed(taken.job, task, worker, lease, budget)

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
        # Those of the groups that completed are kept for a rerun from failure (the record
        # says which; a discard delivered again keeps them too).
        keep = [g for g, owner in kept_groups(job).items() if owner == job.id]
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
            self._finish(job, outcome, self._kept(job))
        elif job.reusable_until is None:  # delivered again: it kept nothing after all
            keep = []
        self.runner.discard_groups(job.id, keep=keep)
        self.coordinator.succeed(task.token)

    def _kept(self, job: Job) -> dict[str, object] | None:
        """What the stopped ``job`` keeps for a rerun from failure (its record's fields)."""
        try:
            location = self.runner.handovers(job.id)
        except ProjectLoadFailed:  # the job still ends; it offers no rerun from failure
            return None
        return kept_groups_fields(job, location, utcnow())

    def _finish(self, job: Job, outcome: RunOutcome, kept: dict[str, object] | None = None) -> None:
        started = job.started_at.timestamp() if job.started_at else time.time()
        log = self._group_logs(job) + outcome.log
        groups = (job.groups or {}).values()
        done = sum(g.completed_nodes for g in groups if g.status in {"completed", "reused"})
        total = int((job.fan_out or {}).get("total_nodes", 0))
        progress = outcome.progress
        if outcome.status != "completed":
            progress = RunProgress(done, total, None)
        ended = RunOutcome(
            outcome.status, outcome.results, outcome.error_message, log, outcome.duration,
            progress=progress, outputs=outcome.outputs,
        )  # fmt: skip
        self.recorder.finish(job, ended, execution_time=time.time() - started, kept=kept)
