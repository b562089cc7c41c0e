"""The writes of a fanned-out job (docs/fan-out.md): its plan, and each group's claim,
progress and end, each a conditional write on that group's own entry of the ``groups`` map.

A group is claimed like a job: pending -> running under a lease, or taken over once its lease
expired (its worker died); the claim's ``worker`` token fences that run's later writes. Every
group write also extends the job's own lease, so the sweeper leaves a job alone while any of
its groups runs; none is made while a cancel is asked (the write then says so).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kedro_jobs.core.aws import aws_errors, error_code
from kedro_jobs.core.models import GroupRun, Job, utcnow
from kedro_jobs.core.states import TERMINAL, JobStatus
from kedro_jobs.core.store.fencing import NOT_CANCELLED, Fence
from kedro_jobs.core.store.items import encode, from_item, sweep, to_native
from kedro_jobs.core.store.table import DEPENDENCY, ConditionFailed, Table
from kedro_jobs.core.timeline import GROUP_TIMELINE, reused_part


class GroupClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    BUSY = "busy"  # running under a live lease elsewhere
    DONE = "done"  # the group already ended (a duplicate delivery)
    JOB_ENDED = "job_ended"  # the job is finished, cancelled, or unknown


@dataclass(frozen=True)
class GroupClaim:
    outcome: GroupClaimOutcome
    job: Job | None


class Groups(Table):
    def start_fan_out(self, job: Job, plan: dict[str, Any], *, lease_seconds: float) -> Job | None:
        """The run that claimed ``job`` fans it out: its plan and every group pending (a
        rerun from failure's reused ones ``reused``, their nodes done). None if the run no
        longer owns the job."""
        lease_end = time.time() + lease_seconds
        reused = plan.get("reused") or {}
        groups = {
            g["id"]: reused_group(g["nodes"])
            if g["id"] in reused
            else GroupRun(nodes=len(g["nodes"]), compute=g.get("compute"))
            for g in plan["groups"]
        }
        values: dict[str, Any] = {
            "fan_out": plan,
            "groups": groups,
            "lease_expires_at": lease_end,
            "updated_at": utcnow(),
            **sweep(JobStatus.RUNNING, lease_end),
        }
        try:
            self._write(job.id, values, Fence(job).to(JobStatus.RUNNING))
        except ConditionFailed:
            return None
        return self._changed(self._as_written(job, values))

    def hold_for_commit(self, job: Job, *, lease_seconds: float) -> Job | None:
        """The commit holds ``job`` before it publishes anything: its lease extended, while
        it runs on the attempt read and no cancel is asked. None otherwise (a cancel asked
        before the commit wins, as a group's claim fails on it). Held, a cancel asked
        meanwhile is too late, as in a one-worker job's last node, and the sweeper leaves the
        job alone rather than end it cancelled with its outputs published: its lease may have
        run out while the commit's message waited behind other jobs."""
        lease_end = time.time() + lease_seconds
        values: dict[str, Any] = {
            "lease_expires_at": lease_end,
            "updated_at": utcnow(),
            **sweep(JobStatus.RUNNING, lease_end),
        }
        try:
            self._write(job.id, values, Fence(job).to(JobStatus.RUNNING) & NOT_CANCELLED)
        except ConditionFailed:
            return None
        return self._changed(self._as_written(job, values))

    def claim_group(
        self,
        job_id: str,
        group_id: str,
        *,
        worker: str,
        lease_seconds: float,
        token: str | None = None,
        compute: str = "lambda",
    ) -> GroupClaim:
        """Claim the group for ``worker``, noting the execution's task ``token`` for it (a
        takeover after this worker dies answers with it) and where it runs (``compute``: a
        task backend's claim is the dispatching consumer's, which its task takes over)."""
        now = time.time()
        lease_end = now + lease_seconds
        names = {"#gs": "groups", "#g": group_id, "#st": "status", "#l": "lease", "#w": "worker",
                 "#sa": "started_at", "#r": "runs", "#c": "completed_nodes", "#cur": "current_node",
                 "#job": "status", "#cx": "cancel_requested", "#jl": "lease_expires_at",
                 "#sd": "sweep_due", "#tk": "token", "#cp": "compute"}  # fmt: skip
        values = {
            ":token": {"S": token} if token else {"NULL": True},
            ":cp": {"S": compute},
            ":running": {"S": "running"},
            ":pending": {"S": "pending"},
            ":job": encode("status", JobStatus.RUNNING),
            ":no": {"BOOL": False},
            ":now": {"N": repr(now)},
            ":lease": {"N": repr(lease_end)},
            ":worker": {"S": worker},
            ":at": to_native(utcnow()),
            ":one": {"N": "1"},
            ":zero": {"N": "0"},
            ":null": {"NULL": True},
        }
        condition = (
            "#job = :job AND #cx = :no AND (#gs.#g.#st = :pending OR "
            "(#gs.#g.#st = :running AND #gs.#g.#l < :now))"
        )
        update = (
            "SET #gs.#g.#st = :running, #gs.#g.#l = :lease, #gs.#g.#w = :worker, "
            "#gs.#g.#sa = :at, #gs.#g.#c = :zero, #gs.#g.#cur = :null, #gs.#g.#tk = :token, "
            "#gs.#g.#cp = :cp, #jl = :lease, #sd = :lease ADD #gs.#g.#r :one"
        )
        try:
            attrs = self._raw_update(job_id, update, condition, names, values)
        except ConditionFailed as failed:
            return _not_claimed(failed, group_id)
        claimed = from_item(attrs)
        self.events.progressed(claimed)  # a group started: progress across groups moved on
        return GroupClaim(GroupClaimOutcome.CLAIMED, claimed)

    def pass_group(
        self,
        job_id: str,
        group_id: str,
        *,
        worker: str,
        to: str,
        lease_seconds: float,
        compute: str | None = None,
        timeline: str | None = None,
        again: bool = False,
    ) -> GroupClaim:
        """Pass the running group from ``worker``'s claim to ``to`` (a task taking over the
        claim its dispatching consumer made for it; a group moved to a task backend,
        ``compute``), with a lease of ``lease_seconds`` (0 or less: expired, so the next
        delivery of its message takes it at once), while the job runs with no cancel asked.
        ``again``: the group runs again from its first node (one more of its ``runs``).
        BUSY when ``worker`` no longer holds it (it was taken over)."""
        lease_end = time.time() + lease_seconds
        names = {"#gs": "groups", "#g": group_id, "#st": "status", "#l": "lease", "#w": "worker",
                 "#job": "status", "#cx": "cancel_requested"}  # fmt: skip
        values: dict[str, Any] = {
            ":running": {"S": "running"},
            ":job": encode("status", JobStatus.RUNNING),
            ":no": {"BOOL": False},
            ":lease": {"N": repr(lease_end)},
            ":worker": {"S": worker},
            ":to": {"S": to},
        }
        update = "SET #gs.#g.#w = :to, #gs.#g.#l = :lease"
        if lease_seconds > 0:  # the job lives as long as its group's claim
            names |= {"#jl": "lease_expires_at", "#sd": "sweep_due"}
            update += ", #jl = :lease, #sd = :lease"
        if compute is not None:
            names["#cp"] = "compute"
            values[":cp"] = {"S": compute}
            update += ", #gs.#g.#cp = :cp"
        update = _with_timeline(update, names, values, timeline)
        if again:
            names["#r"] = "runs"
            values[":one"] = {"N": "1"}
            update += " ADD #gs.#g.#r :one"
        condition = "#gs.#g.#w = :worker AND #gs.#g.#st = :running AND #job = :job AND #cx = :no"
        try:
            attrs = self._raw_update(job_id, update, condition, names, values)
        except ConditionFailed as failed:
            return _not_claimed(failed, group_id)
        return GroupClaim(GroupClaimOutcome.CLAIMED, from_item(attrs))

    def group_beat(
        self,
        job_id: str,
        group_id: str,
        *,
        worker: str,
        completed: int,
        current: str | None,
        lease_seconds: float,
        timeline: str | None = None,
    ) -> tuple[bool | None, Job | None]:
        """Record a running group's progress and extend its lease (and the job's). Returns
        whether a cancel was asked (or the job ended), or None if the group changed hands;
        and the job as written (its sibling groups: a running group notices one whose worker
        died), or None when the write was refused."""
        lease_end = time.time() + lease_seconds
        names = {"#gs": "groups", "#g": group_id, "#w": "worker", "#l": "lease",
                 "#c": "completed_nodes", "#cur": "current_node", "#job": "status",
                 "#cx": "cancel_requested", "#jl": "lease_expires_at",
                 "#sd": "sweep_due"}  # fmt: skip
        values = {
            ":worker": {"S": worker},
            ":lease": {"N": repr(lease_end)},
            ":c": {"N": str(completed)},
            ":cur": {"S": current} if current else {"NULL": True},
            ":job": encode("status", JobStatus.RUNNING),
            ":no": {"BOOL": False},
        }
        update = (
            "SET #gs.#g.#l = :lease, #gs.#g.#c = :c, #gs.#g.#cur = :cur, #jl = :lease, #sd = :lease"
        )
        update = _with_timeline(update, names, values, timeline)
        try:
            attrs = self._raw_update(
                job_id, update, "#gs.#g.#w = :worker AND #job = :job AND #cx = :no", names, values
            )
        except ConditionFailed as failed:
            if not failed.item:
                return True, None
            job = from_item(failed.item)
            group = (job.groups or {}).get(group_id)
            if group is None or group.worker != worker:
                return None, None
            return True, None  # cancelled, or the job ended (a sibling failed it)
        return False, from_item(attrs, lenient=True)

    def take_over_group(self, job_id: str, group_id: str, *, worker: str, every: float) -> bool:
        """Note that the group's message is sent again, its worker (``worker``, as read) dead:
        True for exactly one of the consumers and sweeps that find it so at once, and again
        only ``every`` seconds later (if the message sent was not taken meanwhile). The
        group's lease stays expired, so the next claim takes it."""
        now = time.time()
        names = {"#gs": "groups", "#g": group_id, "#st": "status", "#l": "lease",
                 "#w": "worker", "#td": "taken_over_at", "#job": "status"}  # fmt: skip
        values = {
            ":running": {"S": "running"},
            ":now": {"N": repr(now)},
            ":again": {"N": repr(now - every)},
            ":worker": {"S": worker},
            ":job": encode("status", JobStatus.RUNNING),
        }
        condition = (
            "#job = :job AND #gs.#g.#st = :running AND #gs.#g.#l < :now AND "
            "#gs.#g.#w = :worker AND (attribute_not_exists(#gs.#g.#td) OR #gs.#g.#td < :again)"
        )
        try:
            self._raw_update(job_id, "SET #gs.#g.#td = :now", condition, names, values)
        except ConditionFailed:
            return False
        return True

    def end_group(
        self,
        job_id: str,
        group_id: str,
        *,
        worker: str,
        status: str,
        completed: int,
        error: str | None = None,
        timeline: str | None = None,
    ) -> bool:
        """The group's run ended (``status``). False if it changed hands meanwhile."""
        names = {"#gs": "groups", "#g": group_id, "#w": "worker", "#st": "status",
                 "#ea": "ended_at", "#c": "completed_nodes", "#cur": "current_node",
                 "#e": "error"}  # fmt: skip
        values = {
            ":worker": {"S": worker},
            ":st": {"S": status},
            ":at": to_native(utcnow()),
            ":c": {"N": str(completed)},
            ":null": {"NULL": True},
            ":e": {"S": error} if error else {"NULL": True},
        }
        update = (
            "SET #gs.#g.#st = :st, #gs.#g.#ea = :at, #gs.#g.#c = :c, #gs.#g.#cur = :null, "
            "#gs.#g.#e = :e"
        )
        update = _with_timeline(update, names, values, timeline)
        try:
            attrs = self._raw_update(job_id, update, "#gs.#g.#w = :worker", names, values)
        except ConditionFailed:
            return False
        self.events.progressed(from_item(attrs, lenient=True))
        return True

    def _raw_update(
        self,
        job_id: str,
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> dict[str, Any]:
        """One UpdateItem on a group's nested entry (the expressions of expressions.py name
        top-level attributes only). ConditionFailed carries the item as it was."""
        used = {k: v for k, v in values.items() if k in update or k in condition}
        with aws_errors(DEPENDENCY):
            try:
                resp = self.client.update_item(
                    TableName=self.table_name,
                    Key={"id": {"S": job_id}},
                    UpdateExpression=update,
                    ConditionExpression=f"attribute_exists(id) AND {condition}",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=used,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except Exception as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    raise ConditionFailed(getattr(exc, "response", {}).get("Item") or {}) from exc
                raise
        attributes: dict[str, Any] = resp.get("Attributes", {})
        return attributes


def _not_claimed(failed: ConditionFailed, group_id: str) -> GroupClaim:
    """Why a group's claim (or pass) was refused, from the item as it was."""
    if not failed.item:
        return GroupClaim(GroupClaimOutcome.JOB_ENDED, None)
    job = from_item(failed.item)
    group = (job.groups or {}).get(group_id)
    if job.status in TERMINAL or job.cancel_requested or group is None:
        return GroupClaim(GroupClaimOutcome.JOB_ENDED, job)
    if group.status in {"completed", "failed", "cancelled"}:
        return GroupClaim(GroupClaimOutcome.DONE, job)
    return GroupClaim(GroupClaimOutcome.BUSY, job)


def _with_timeline(
    update: str, names: dict[str, str], values: dict[str, Any], timeline: str | None
) -> str:
    """``update`` also setting the group's part of the job's node timeline (the JSON of
    core/timeline.py's ``group_part``), in the same write: no round trip of its own."""
    if timeline is None:
        return update
    names["#tl"] = GROUP_TIMELINE
    values[":tl"] = {"S": timeline}
    return f"{update}, #gs.#g.#tl = :tl"


def reused_group(nodes: list[str]) -> dict[str, Any]:
    """A rerun from failure's group that is not run again: its nodes done, shown ``reused``
    on the job's timeline as a one-worker rerun's reused nodes are."""
    entry = GroupRun(status="reused", nodes=len(nodes), completed_nodes=len(nodes))
    return {**entry.model_dump(mode="json"), GROUP_TIMELINE: reused_part(nodes)}
