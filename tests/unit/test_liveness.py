"""The one rule that tells a job held, waiting its turn, abandoned or lost (core/liveness.py):
a pure decision, tested with the time given, never slept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kedro_jobs.core.fanout import TASK_HEARTBEAT_SECONDS
from kedro_jobs.core.liveness import Action, Limits, QueueFacts, dead_groups, decide, held
from kedro_jobs.core.models import GroupRun, Job
from kedro_jobs.core.states import JobStatus

T0 = 1_800_000_000.0
LIMITS = Limits(max_attempts=3, sweep_after_seconds=180)


def _job(**update: object) -> Job:
    job = Job.new(pipeline_name="p", parameters={}, options={}, user_id="u")
    return job.model_copy(update={"created_at": datetime.fromtimestamp(T0, UTC), **update})


def _facts(waiting: int = 0, in_flight: int = 0, pending: int = 1, live: int = 0) -> QueueFacts:
    return QueueFacts(waiting=waiting, in_flight=in_flight, pending_jobs=pending, live_runs=live)


def test_a_running_job_under_a_live_lease_is_held_and_left_alone() -> None:
    job = _job(status=JobStatus.RUNNING, attempts=1, lease_expires_at=T0 + 60)
    assert held(job, T0)
    assert decide(job, T0, LIMITS) is Action.HELD
    assert decide(job, T0 + 61, LIMITS) is Action.TAKE_OVER


@pytest.mark.parametrize(
    ("update", "action"),
    [
        ({"cancel_requested": True}, Action.CANCEL),
        ({"attempts": 3}, Action.EXHAUSTED),
        ({"attempts": 3, "continuations": 1}, Action.TAKE_OVER),  # a hand-off is no crash
        ({"handed_off": True, "lease_expires_at": T0 + 600}, Action.CONTINUE),
        ({"status": JobStatus.COMPLETED}, Action.FINISHED),
    ],
)
def test_a_running_job_whose_worker_is_gone(update: dict[str, object], action: Action) -> None:
    job = _job(**{"status": JobStatus.RUNNING, "attempts": 1, "lease_expires_at": T0 - 1, **update})
    assert decide(job, T0, LIMITS) is action


def test_a_pending_job_is_claimed_by_a_delivery_and_young_for_the_sweeper() -> None:
    job = _job()
    assert decide(job, T0 + 10_000, LIMITS) is Action.CLAIM
    assert decide(job, T0 + 179, LIMITS, facts=_facts()) is Action.YOUNG


def test_a_pending_job_behind_others_waits_however_long_the_backlog() -> None:
    job = _job()
    behind = _facts(waiting=19, in_flight=1, pending=19, live=1)
    for looks in (0, 3, 50):
        assert decide(job, T0 + 10_000, LIMITS, facts=behind, looks=looks) is Action.WAITING


def test_a_missing_message_is_sent_again_once_even_while_a_consumer_works() -> None:
    job = _job()
    short = _facts(waiting=18, in_flight=1, pending=19, live=1)  # one message lost
    assert decide(job, T0 + 200, LIMITS, facts=short) is Action.RESEND
    assert decide(job, T0 + 200, LIMITS, facts=short.after_send()) is Action.WAITING


def test_a_job_nobody_takes_ends_lost_after_max_attempts_looks() -> None:
    job = _job()
    queued = _facts(waiting=1, pending=1)  # its message is there; nobody takes it
    assert decide(job, T0 + 200, LIMITS, facts=queued, looks=2) is Action.UNTAKEN
    assert decide(job, T0 + 200, LIMITS, facts=queued, looks=3) is Action.LOST
    gone = _facts(waiting=0, pending=1)  # and its message is gone too: sent once more
    assert decide(job, T0 + 200, LIMITS, facts=gone, looks=0) is Action.RESEND


def test_a_message_held_by_a_consumer_that_died_counts_as_lost_once_nobody_works() -> None:
    job = _job()
    # Taken, never claimed, invisible for the visibility timeout: behind a working consumer
    # it waits its turn; once nobody works it is sent again for a live consumer to take.
    stuck = _facts(waiting=0, in_flight=1, pending=1, live=0)
    assert decide(job, T0 + 200, LIMITS, facts=stuck) is Action.RESEND
    busy = _facts(waiting=5, in_flight=2, pending=6, live=1)
    assert decide(job, T0 + 200, LIMITS, facts=busy) is Action.WAITING


def test_a_fanned_out_job_between_its_groups_is_held_by_its_state_machine() -> None:
    """Its lease ran out because nothing runs between two levels (the next group waits on
    the queue): not a worker lost, until the state machine would have given up on a task.
    A group under a dead worker is: the job is taken over (its delivery re-sends the group)."""
    groups = {
        "g1": GroupRun(status="completed", nodes=2, completed_nodes=2),
        "g2": GroupRun(status="pending", nodes=1),
    }
    job = _job(status=JobStatus.RUNNING, attempts=1, lease_expires_at=T0 - 1,
               fan_out={"groups": [], "levels": []}, groups=groups)  # fmt: skip
    assert dead_groups(job, T0) == []
    assert decide(job, T0, LIMITS) is Action.HELD
    assert decide(job, T0 + TASK_HEARTBEAT_SECONDS, LIMITS) is Action.TAKE_OVER
    dead = {**groups, "g2": GroupRun(status="running", nodes=1, worker="w", lease=T0 - 1)}
    assert dead_groups(job.model_copy(update={"groups": dead}), T0) == ["g2"]
    assert decide(job.model_copy(update={"groups": dead}), T0, LIMITS) is Action.TAKE_OVER
    assert decide(job.model_copy(update={"cancel_requested": True}), T0, LIMITS) is Action.CANCEL
