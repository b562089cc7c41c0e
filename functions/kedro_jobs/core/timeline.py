"""A job's node timeline: one entry per node in run order, with its state and times, kept on
the job record (``nodes``) and written with the progress writes the run already makes.

The times are the consumer's wall clock when it learns of a node's end; a node's duration is
the runner's own measure (from the end of the node before to the end of this one's saves), so
``started_at`` is ``finished_at - duration``. The record stays far below DynamoDB's 400 KB
item limit whatever the pipeline's size: at most ``MAX_TIMELINE_NODES`` entries are kept (the
most recent), and ``nodes_omitted`` counts the earlier ones left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

NodeStatus = Literal["completed", "failed", "running", "pending", "skipped", "reused"]

# About 85 bytes an entry as stored (35-character names): 300 are 25 KB of the 400 KB item.
MAX_TIMELINE_NODES = 300


class NodeRun(BaseModel):
    """One node of a job's run."""

    name: str
    status: NodeStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None  # seconds
    segment: int | None = None  # the segment (invocation or task) that ran it
    compute: str | None = None  # where that segment ran: a compute backend (core/compute/)
    # A fanned-out job's node (docs/fan-out.md): the group that ran it, and that group's worker.
    group: str | None = None
    worker: str | None = None


class Timeline:
    """The timeline of one segment's run, built from what the runner reports: a node began
    (it is the next to run) and a node finished after so many seconds. ``earlier`` holds the
    entries of the job's earlier segments, kept as they were."""

    def __init__(
        self,
        earlier: Sequence[NodeRun],
        *,
        segment: int | None,
        compute: str | None,
        omitted: int = 0,
    ) -> None:
        self.entries = [n for n in earlier if n.status != "running"]
        # The entries running now (one, but for a superseded start): what began and finished
        # look up, without a walk over a long pipeline's every entry at each node.
        self._open: list[NodeRun] = []
        self.segment = segment
        self.compute = compute
        self.omitted = omitted
        self.last_end: datetime | None = None

    def resume(self, done: int) -> None:
        """The run goes on with ``done`` nodes finished before it (from a checkpoint; 0 from
        the first node): entries past those, of a run taken over, are dropped."""
        kept = [e for e in self.entries if e.status in ("completed", "reused")]
        drop = max(0, self.omitted + len(kept) - done)
        self.entries = kept[: len(kept) - drop] if drop else kept
        self._open = []
        self.omitted = max(0, self.omitted - max(0, drop - len(kept)))

    def finished(self, name: str, seconds: float, now: datetime) -> None:
        """``name`` finished (its outputs saved) ``seconds`` after it began."""
        start = now - timedelta(seconds=seconds)
        entry = self._running(name) or self._add(name, start)
        self._open = [e for e in self._open if e is not entry]
        entry.status = "completed"
        entry.started_at = start
        entry.finished_at = now
        entry.duration = round(seconds, 4)
        self.last_end = now

    def began(self, name: str | None, now: datetime) -> None:
        """``name`` is the node running now (None: nothing left to run)."""
        if name is None or self._running(name) is not None:
            return
        for entry in self._open:  # superseded without a finish: not run after all
            entry.status = "pending"
        self._open = []
        self._add(name, self.last_end or now)

    def ended(self, status: str, now: datetime) -> None:
        """The segment ended with the run's ``status``: a node still running failed (an error
        or the deadline), or did not run (a cancel or a hand-off stops at a boundary)."""
        for entry in self._open:
            if status in ("failed", "timed_out"):
                entry.status = "failed"
                entry.finished_at = now
                if entry.started_at is not None:
                    entry.duration = round((now - entry.started_at).total_seconds(), 4)
            else:
                entry.status = "pending"
                entry.started_at = None
        self._open = []
        self.entries = [e for e in self.entries if e.status != "pending"]

    def nodes(self) -> list[NodeRun]:
        """The entries to record (the most recent ``MAX_TIMELINE_NODES``)."""
        self._cap()
        return [entry.model_copy() for entry in self.entries]

    def _cap(self) -> None:
        extra = len(self.entries) - MAX_TIMELINE_NODES
        if extra > 0:
            self.entries = self.entries[extra:]
            self.omitted += extra

    def _running(self, name: str) -> NodeRun | None:
        for entry in reversed(self._open):
            if entry.name == name:
                return entry
        return None

    def _add(self, name: str, start: datetime) -> NodeRun:
        entry = NodeRun(
            name=name,
            status="running",
            started_at=start,
            segment=self.segment,
            compute=self.compute,
        )
        self.entries.append(entry)
        self._open.append(entry)
        return entry


# -- the stored form ---------------------------------------------------------------------------
# Each progress write rewrites the whole list, and DynamoDB bills a write by the kilobyte: rows
# of [name, status, started_at (epoch seconds), duration, segment, compute] are a third of
# the size of the record's form (``finished_at`` is ``started_at + duration``).


def pack(nodes: Sequence[NodeRun | Mapping[str, Any]]) -> list[list[Any]]:
    rows = []
    for node in nodes:
        n = node if isinstance(node, NodeRun) else NodeRun.model_validate(node)
        start = round(n.started_at.timestamp(), 3) if n.started_at else None
        rows.append([n.name, n.status, start, n.duration, n.segment, n.compute])
    return rows


def unpack(rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    nodes = []
    for name, status, start, duration, segment, compute in rows:
        started = datetime.fromtimestamp(start, UTC) if start is not None else None
        finished = None
        if started is not None and duration is not None and status != "running":
            finished = started + timedelta(seconds=duration)
        nodes.append({"name": name, "status": status, "started_at": started,
                      "finished_at": finished, "duration": duration, "segment": segment,
                      "compute": compute})  # fmt: skip
    return nodes


# -- a fanned-out job's timeline (docs/fan-out.md) ---------------------------------------------
# Several groups write at once, each only its own entry of the record's ``groups`` map: a
# group's part of the timeline is kept there (``timeline``: JSON of its rows [name, status,
# started_at (epoch seconds), duration] and how many earlier rows it left out), written with
# the group's heartbeat/progress and end writes. The record's ``nodes`` is their combination,
# made when the record is read (the item codec calls ``combine_groups``).

GROUP_TIMELINE = "timeline"  # the key of a group's part inside its entry of ``groups``


def group_cap(groups: int) -> int:
    """The rows each of a job's ``groups`` keeps: together at most ``MAX_TIMELINE_NODES``."""
    return max(1, MAX_TIMELINE_NODES // max(1, groups))


def group_part(timeline: Timeline, cap: int) -> str:
    """A group's part of its job's timeline, as stored in the group's entry (its latest
    ``cap`` rows)."""
    nodes = timeline.nodes()
    kept = nodes[-cap:] if cap > 0 else []
    rows = [
        [n.name, n.status, round(n.started_at.timestamp(), 3) if n.started_at else None, n.duration]
        for n in kept
    ]
    omitted = timeline.omitted + len(nodes) - len(kept)
    return json.dumps({"rows": rows, "omitted": omitted}, separators=(",", ":"))


def reused_part(nodes: Sequence[str]) -> str:
    """The part of a rerun from failure's group that is not run again: its nodes ``reused``."""
    rows = [[name, "reused", None, None] for name in nodes[-MAX_TIMELINE_NODES:]]
    omitted = len(nodes) - len(rows)
    return json.dumps({"rows": rows, "omitted": omitted}, separators=(",", ":"))


def combine_groups(
    groups: Mapping[str, Any], levels: Sequence[Sequence[str]] = ()
) -> tuple[list[dict[str, Any]], int] | None:
    """A fanned-out job's ``nodes`` and ``nodes_omitted`` from its groups' parts (``groups``:
    the record's map, group id to entry), in run order: by the group's level (``levels``,
    the plan's), then by start time (a node not started last). None if no group has a part.
    A part that does not read is left out (the record stays readable)."""
    level_of = {
        gid: i
        for i, level in enumerate(levels)
        if isinstance(level, list | tuple)
        for gid in level
        if isinstance(gid, str)
    }
    far = datetime.max.replace(tzinfo=UTC)
    near = datetime.min.replace(tzinfo=UTC)
    entries: list[tuple[int, datetime, int, dict[str, Any]]] = []
    omitted = 0
    found = False
    for gid, entry in groups.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get(GROUP_TIMELINE), str):
            continue
        try:
            part = json.loads(entry[GROUP_TIMELINE])
            rows = unpack([[*row[:4], None, None] for row in part["rows"]])
            omitted += int(part.get("omitted") or 0)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, OSError):
            continue
        found = True
        worker = entry.get("worker")
        for node in rows:
            node["group"] = gid
            node["worker"] = worker if isinstance(worker, str) else None
            # A rerun's reused nodes first (they ran before it), as a one-worker rerun's.
            start = node["started_at"] or (near if node["status"] == "reused" else far)
            entries.append((level_of.get(gid, len(level_of)), start, len(entries), node))
    if not found:
        return None
    entries.sort(key=lambda e: e[:3])
    nodes = [e[3] for e in entries]
    extra = max(0, len(nodes) - MAX_TIMELINE_NODES)
    return nodes[extra:], omitted + extra


def expected_end(
    nodes: Sequence[NodeRun],
    total: int,
    estimates: Mapping[str, float],
    now: datetime,
) -> datetime | None:
    """When a running job is expected to end, from the seconds each node of its pipeline took
    when it last ran: the running node's estimate less what it has run, then the remaining
    nodes' (by name where known, else their mean). None without estimates."""
    if not estimates:
        return None
    done = {n.name for n in nodes if n.status in ("completed", "reused")}
    running = [n for n in nodes if n.status == "running"]
    mean = sum(estimates.values()) / len(estimates)
    left = 0.0
    for node in running:
        ran = (now - node.started_at).total_seconds() if node.started_at else 0.0
        left += max(0.0, estimates.get(node.name, mean) - ran)
    waiting = max(0, total - len(done) - len(running))
    unrun = [s for name, s in estimates.items() if name not in done and name not in
             {n.name for n in running}]  # fmt: skip
    if len(unrun) >= waiting:
        # The pipeline's remaining nodes are the ones not seen yet; their known durations,
        # longest first where a filter runs only some of them (an upper estimate).
        left += sum(sorted(unrun, reverse=True)[:waiting])
    else:
        left += sum(unrun) + (waiting - len(unrun)) * mean
    return now + timedelta(seconds=left)


def expected_fan_out_end(
    plan: Mapping[str, Any],
    groups: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    now: datetime,
) -> datetime | None:
    """When a running fanned-out job is expected to end, from its plan: the levels run one
    after another and a level ends with its longest group, so what is left is, over the
    levels, the longest of each level's groups' remaining time (the critical path). A group
    that ended has none left; a pending one, its nodes' durations when the pipeline last ran
    (the plan's ``node_seconds``; a node never timed counts as their mean); a running one,
    its nodes not yet run plus what its running node has left of its estimate (``nodes``:
    the job's timeline, each row naming its group). None without estimates, as for a
    one-worker job."""
    estimates = plan.get("node_seconds")
    if not isinstance(estimates, Mapping) or not estimates:
        return None
    mean = sum(estimates.values()) / len(estimates)
    rows: dict[str, dict[str, Mapping[str, Any]]] = {}
    for node in nodes:
        rows.setdefault(str(node.get("group")), {})[str(node.get("name"))] = node
    planned = {g["id"]: g for g in plan.get("groups", []) if isinstance(g, Mapping)}

    def left(group_id: str) -> float:
        entry = groups.get(group_id)
        status = entry.get("status") if isinstance(entry, Mapping) else None
        if status not in (None, "pending", "running"):
            return 0.0
        ran = rows.get(group_id, {}) if status == "running" else {}
        total = 0.0
        for name in planned.get(group_id, {}).get("nodes", []):
            estimate = float(estimates.get(name, mean))
            row = ran.get(name)
            if row is None:
                total += estimate
            elif row.get("status") == "running" and isinstance(row.get("started_at"), datetime):
                total += max(0.0, estimate - (now - row["started_at"]).total_seconds())
        return total

    levels = plan.get("levels") or []
    remaining = sum(max((left(gid) for gid in level), default=0.0) for level in levels)
    return now + timedelta(seconds=remaining)
