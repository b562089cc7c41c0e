"""The job store's roles: each kind of caller is given an object with only the methods it
needs, over the one table; together they answer to every name the one store object had."""

from __future__ import annotations

import pytest

from kedro_jobs.core.events import NoEvents
from kedro_jobs.core.store import (
    ApiJobs,
    GroupJobs,
    RunJobs,
    ScheduleJobs,
    SweepJobs,
)
from kedro_jobs.core.store.table import Table

# The table's own (get, from_settings, over, client) are every role's.
ROLES: dict[type[Table], set[str]] = {
    ApiJobs: {
        "create", "fail", "get_for_user", "list_jobs", "request_cancel", "schedule_runs", "ping",
    },
    RunJobs: {
        "create", "fail", "claim", "create_claimed", "fail_pending", "heartbeat",
        "report_progress", "hand_off", "finish", "mark_dispatched", "dispatched",
    },
    SweepJobs: {
        "create", "fail", "stranded", "count_live", "mark_looked", "fail_stranded",
        "fail_exhausted", "cancel_abandoned", "task_error",
    },
    ScheduleJobs: {"schedule_runs", "create_if_new", "skip", "defer"},
    GroupJobs: {
        "start_fan_out", "claim_group", "group_beat", "end_group",
        "take_over_group", "hold_for_commit", "pass_group", "note_task_error",
    },
}  # fmt: skip
# Every public method of the one store object before the roles.
BEFORE = {
    "get", "create", "get_for_user", "fail", "fail_pending", "request_cancel", "ping",
    "heartbeat", "report_progress", "finish", "hand_off", "fail_exhausted", "cancel_abandoned",
    "claim", "create_claimed", "list_jobs", "stranded", "count_live", "mark_looked",
    "fail_stranded", "mark_dispatched", "dispatched", "schedule_runs", "create_if_new", "skip",
    "defer", "start_fan_out", "claim_group", "group_progress", "end_group", "from_settings",
}  # fmt: skip


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


@pytest.mark.parametrize("role", list(ROLES), ids=lambda r: r.__name__)
def test_each_role_has_only_what_its_callers_need(role: type[Table]) -> None:
    assert _public(role) - _public(Table) == ROLES[role]


# Changed since, each in the one role that needs it: a group's heartbeat returns the job too
# (a running group notices a sibling whose worker died) and takes such a sibling over; the
# commit holds the job before it publishes; a group passes from a dispatching consumer's
# claim to its Fargate task's.
ADDED = {
    "group_beat", "take_over_group", "hold_for_commit", "pass_group", "note_task_error",
    "task_error",
}  # fmt: skip
REMOVED = {"group_progress"}


def test_the_roles_together_are_the_store_as_it_was() -> None:
    assert set().union(*ROLES.values()) | {"get", "from_settings"} == BEFORE - REMOVED | ADDED


def test_a_role_over_another_shares_its_table_client_and_events() -> None:
    """What the consumer does: it is given a RunJobs, and its overlap policy and fan-out get
    their roles over it (one client, one table, the same job events)."""
    events = NoEvents()
    client = object()
    runs = RunJobs("jobs", dynamodb=client, ttl_days=7, events=events)
    for cls in (ApiJobs, SweepJobs, ScheduleJobs, GroupJobs):
        role = cls.over(runs)
        assert type(role) is cls
        assert (role.table_name, role.client, role.ttl_days, role.events) == (
            "jobs",
            client,
            7,
            events,
        )
    assert not hasattr(ApiJobs.over(runs), "claim")
    assert not hasattr(SweepJobs.over(runs), "list_jobs")
