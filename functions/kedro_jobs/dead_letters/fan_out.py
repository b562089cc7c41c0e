"""A fan-out execution's message on the dead-letter queue (docs/fan-out.md): a group's, the
commit's or the discard's, whose deliveries all failed. The execution still waits for its
answer, and without one the job would stay ``running`` until its lease and the task's
HeartbeatSeconds ran out (hours), then fail as a lost worker. Instead the job is failed at once,
saying what was lost, and the task is answered with a failure: the state machine goes on to
its discard (the consumer removes the job's staging there, as for any failed fanned-out job),
and a dead-lettered discard is sent again by the state machine's own retry.

Nothing is done for a message whose task the execution no longer waits for (a duplicate after
its answer, a forged one, or this same dead letter delivered again), nor for a group's message
while the group runs elsewhere (its worker answers the same task) or its worker died (the
takeover sends the group's message again)."""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger

from kedro_jobs.core.fanout import MESSAGE_DEAD_LETTERED, Coordinator, FanOutTask, task_key
from kedro_jobs.core.models import Job
from kedro_jobs.core.store.roles.sweep import SweepJobs
from kedro_jobs.core.store.texts import lost_fan_out_task

logger = Logger(service="kedro-jobs-dlq", child=True)


def _what(task: FanOutTask, job: Job) -> str:
    if task.fanout != "group":
        return f"The job's {task.fanout}"
    planned = {g["id"]: g for g in (job.fan_out or {}).get("groups", [])}
    name = planned.get(str(task.group), {}).get("name")
    return f"The job's group {task.group}" + (f" ({name})" if name else "")


def _not_lost(job: Job, task: FanOutTask, now: float) -> bool:
    """A group's message is not the only way its task is answered while the group runs: under
    a live lease its worker answers; under an expired one (its worker died) the group's
    message is sent again, with the token its claim noted, by a running sibling or the job's
    next sweep (docs/fan-out.md)."""
    group = (job.groups or {}).get(str(task.group)) if task.fanout == "group" else None
    if group is None or group.status != "running":
        return False
    return (group.lease or 0.0) > now or bool(group.token)


def _first_failure(job: Job) -> str | None:
    failed = [g for g in (job.groups or {}).values() if g.status == "failed" and g.error]
    failed.sort(key=lambda g: g.ended_at or g.started_at or job.created_at)
    return failed[0].error if failed else None


def dead_fan_out_task(
    task: FanOutTask,
    receives: int,
    jobs: SweepJobs,
    coordinator: Coordinator,
) -> None:
    """End the job of a dead-lettered fan-out message and answer its task (see the module)."""
    if not coordinator.heartbeat(task.token):
        logger.info("dead-lettered fan-out message the execution no longer waits for; dropped")
        return
    job = jobs.get(task.job_id, lenient=True)
    if job is None or job.fan_out is None:
        logger.error("dead-lettered fan-out message of no fanned-out job; dropped")
        return
    if _not_lost(job, task, time.time()):
        logger.info("dead-lettered group message of a group running (or taken over); dropped")
        return
    last_error = jobs.task_error(job.id, task_key(task))  # noted by its last delivery
    lost = lost_fan_out_task(_what(task, job), receives, last_error)
    if not job.status.terminal:
        failure = _first_failure(job) if task.fanout == "discard" else None
        message = f"{failure} ({lost[0].lower()}{lost[1:]})" if failure else lost
        jobs.fail(job.id, message)  # None: it ended meanwhile, and stays as it ended
        logger.warning("fanned-out job failed from the dead-letter queue", extra={"job_id": job.id})
    # Answered last: the discard it leads to finds the job ended (and removes its staging).
    coordinator.fail(task.token, MESSAGE_DEAD_LETTERED, lost)
