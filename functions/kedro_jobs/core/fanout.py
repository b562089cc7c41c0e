"""Fan-out's coordinator: AWS Step Functions (docs/fan-out.md).

The state machine (template.yaml's FanOutStateMachine) takes a job's group levels, sends one
message per group to the jobs queue with a task token (``sqs:sendMessage.waitForTaskToken``),
a level's groups at once and the next level after them, then one ``commit`` message; if any
group fails, one ``discard`` message. The consumer answers each with SendTaskSuccess or
SendTaskFailure (SendTaskHeartbeat while a group runs). The execution is named after the job,
so a duplicate delivery of the job starts no second one.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StrictStr, StringConstraints, ValidationError

from kedro_jobs.core.aws import aws_errors, client, error_code
from kedro_jobs.names import JOB_ID_PATTERN

DEPENDENCY = "Step Functions"
# What a group's SendTaskFailure says (the state machine's Catch sends every error to its
# discard step, which fails or cancels the job as its record says).
GROUP_FAILED = "GroupFailed"
GROUP_CANCELLED = "GroupCancelled"
JOB_ENDED = "JobEnded"
# What the dead-letter function answers for a task whose message it got: the state machine
# goes to its discard (a dead-lettered discard is sent again, by the discard's Retry).
MESSAGE_DEAD_LETTERED = "MessageDeadLettered"
# The state machine's HeartbeatSeconds on every task (template.yaml): a task without a
# heartbeat or an answer this long fails its execution (a group's failure goes to Discard).
TASK_HEARTBEAT_SECONDS = 3600
# Step Functions limits: a failure's cause is at most 32,768 characters, its error 256.
_CAUSE_MAX = 32_000


class FanOutTask(BaseModel):
    """A message the state machine sends to the jobs queue."""

    model_config = ConfigDict(extra="forbid")

    fanout: Literal["group", "commit", "discard"]
    job_id: Annotated[StrictStr, StringConstraints(pattern=JOB_ID_PATTERN)]
    group: Annotated[StrictStr, StringConstraints(pattern=r"^g[0-9]{1,4}$")] | None = None
    token: Annotated[StrictStr, StringConstraints(min_length=1, max_length=1024)]
    # The discard's: the error that ended the execution's groups (Step Functions' Error and
    # Cause, as its Catch passed them on).
    failure: dict[str, Any] | None = None


def task_key(task: FanOutTask) -> str:
    """Which of its job's tasks ``task`` is: its group's id, ``commit`` or ``discard``."""
    return str(task.group) if task.fanout == "group" else task.fanout


def parse_task(body: str) -> FanOutTask | None:
    """The fan-out task a queue message holds, or None if it is not one (a job message)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or "fanout" not in data:
        return None
    try:
        return FanOutTask.model_validate(data)
    except ValidationError:
        return None


UNFINISHED = "The job's fan-out execution ended before every group had run"
# A group's error when it stopped at a node boundary for its job's sake, not a user's cancel.
GROUP_STOPPED = (
    "Stopped at a node boundary: another group of the job failed, or Step Functions no "
    "longer waited for this group (its task timed out)"
)


def unfinished(failure: dict[str, Any] | None, groups: dict[str, Any], plan: dict[str, Any]) -> str:
    """Why a fanned-out job failed when its execution went to the discard with no group
    failed or cancelled: what Step Functions said (``failure``, its Catch's Error and Cause:
    a task timed out, say), and the groups (``groups``: the record's, by id) not run to
    their end."""
    names = {g["id"]: g["name"] for g in plan.get("groups", [])}
    open_ = [
        f"{gid} ({names.get(gid, gid)})"
        for gid in (g["id"] for g in plan.get("groups", []))
        if getattr(groups.get(gid), "status", "pending") in {"pending", "running"}
    ]
    said = ""
    if failure and failure.get("Error"):
        cause = str(failure.get("Cause") or "")[:500]
        said = f" (Step Functions: {failure['Error']}{': ' + cause if cause else ''})"
    return (
        f"{UNFINISHED}{said}"
        + (f"; not run to their end: {', '.join(open_)}" if open_ else "")
        + f". A group's task ends when its message waits, or its group runs, past the state "
        f"machine's HeartbeatSeconds ({TASK_HEARTBEAT_SECONDS} s) without a heartbeat, or "
        "past its TimeoutSeconds. Nothing was committed: rerun it from failure (the groups "
        "that completed are kept) or submit it again"
    )


def execution_input(job_id: str, plan: dict[str, Any]) -> dict[str, Any]:
    """What the state machine iterates over: the levels, each a list of group ids. A rerun
    from failure's ``reused`` groups are not run again (their hand-overs were kept): left
    out, and a level left with none of its groups with them."""
    reused = plan.get("reused") or {}
    levels = [[g for g in level if g not in reused] for level in plan["levels"]]
    return {"job_id": job_id, "levels": [level for level in levels if level]}


def _group_seconds(group: dict[str, Any], node_seconds: dict[str, float]) -> float | None:
    """The group's nodes' last durations, summed; None if one of them was never timed."""
    found = [node_seconds.get(node) for node in group["nodes"]]
    return None if any(s is None for s in found) else sum(s or 0.0 for s in found)


def _merged(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """Groups of one level run one after another on one worker (none reads another)."""
    if len(groups) == 1:
        return groups[0]
    return {
        "id": groups[0]["id"],
        "name": "+".join(g["name"] for g in groups),
        "nodes": [n for g in groups for n in g["nodes"]],
        "depends_on": sorted({d for g in groups for d in g["depends_on"]}),
        "merged": [g["id"] for g in groups],
    }


def _fit_level(
    groups: list[dict[str, Any]], seconds: dict[str, float | None], minimum: float, trust: bool
) -> list[list[dict[str, Any]]]:
    """One level's groups, packed: each pack runs on one worker. A group that took at least
    ``minimum`` (or was never timed, where ``trust``: namespaces) keeps a worker of its own;
    smaller ones are packed together, in order, until a pack reaches ``minimum``; a last pack
    still below it joins the level's shortest pack (it would not be worth its worker)."""

    def worth(group_seconds: float | None) -> bool:
        if minimum <= 0:  # FAN_OUT_MIN_GROUP_SECONDS=0: whenever the shape allows
            return True
        return trust if group_seconds is None else group_seconds >= minimum

    packs: list[list[dict[str, Any]]] = []
    small: list[dict[str, Any]] = []
    small_seconds = 0.0
    for group in groups:
        if worth(seconds[group["id"]]):
            packs.append([group])
            continue
        small.append(group)
        small_seconds += seconds[group["id"]] or 0.0
        if small_seconds >= minimum:
            packs.append(small)
            small, small_seconds = [], 0.0
    if small:
        if not packs:
            return [small]

        def length(pack: list[dict[str, Any]]) -> float:
            known = [seconds[g["id"]] for g in pack]
            return float("inf") if None in known else sum(s or 0.0 for s in known)

        min(packs, key=length).extend(small)
    return packs


# A group known to take this share of an invocation or more is too long to fan out: one
# stopped at the deadline noted its time so far, which may fall just short of the next one's.
_NEAR_THE_LIMIT = 0.9


def fit_plan(
    plan: dict[str, Any],
    node_seconds: dict[str, float],
    min_group_seconds: float,
    *,
    invocation_seconds: float = float("inf"),
    long_groups: str | None = None,
) -> dict[str, Any] | None:
    """The plan a job runs with (groups worth a worker each), or None: one worker runs it.

    What is known decides (docs/fan-out.md, "When a job fans out"):
    - Past durations (each node's last run, summed per group): a group shorter than
      ``min_group_seconds`` is not worth a worker of its own (its claim, hand-over and
      coordination cost about a second); small groups of one level are packed together.
    - A group never timed (the pipeline's first run, or a node new to it): a namespace is
      the user's statement that it is an independent unit, so it gets a worker; a branch
      found in the DAG's shape gets none (most are a few quick nodes, and the first run
      on one worker times them for the next).
    The job fans out when some level still has two or more groups after packing. A group
    known to take nearly ``invocation_seconds`` or more (what one invocation allows it) runs as
    a task of the ``long_groups`` backend (Fargate: its plan entry's ``compute``) where the
    deployment offers one; where it offers none, such a job runs on one worker, which goes on
    in segments.
    """
    trust = plan.get("grouped_by") == "namespace"
    seconds = {g["id"]: _group_seconds(g, node_seconds) for g in plan["groups"]}
    by_id = {g["id"]: g for g in plan["groups"]}
    levels = [
        [_merged(pack) for pack in _fit_level([by_id[i] for i in level], seconds,
                                               min_group_seconds, trust)]
        for level in plan["levels"]
    ]  # fmt: skip
    if not any(len(level) > 1 for level in levels):
        return None
    known = [sum(node_seconds.get(n, 0.0) for n in g["nodes"]) for level in levels for g in level]
    too_long = [s >= _NEAR_THE_LIMIT * invocation_seconds for s in known]
    if any(too_long) and long_groups is None:
        return None
    # Ids again g1, g2, ... in the order the levels run; dependencies follow the packs.
    ids: dict[str, str] = {}
    renamed: dict[str, str] = {}
    order = [group for level in levels for group in level]
    for number, group in enumerate(order, start=1):
        renamed[group["id"]] = f"g{number}"
        for old in group.get("merged", [group["id"]]):
            ids[old] = f"g{number}"
    groups = [
        {
            "id": renamed[g["id"]],
            "name": g["name"],
            "nodes": list(g["nodes"]),
            "depends_on": sorted({ids[d] for d in g["depends_on"]}, key=lambda i: int(i[1:])),
            # Too long for an invocation: run as a task of that backend (docs/fan-out.md).
            **({"compute": long_groups} if long else {}),
        }
        for g, long in zip(order, too_long, strict=True)
    ]
    return {
        **plan,
        "groups": groups,
        "levels": [[renamed[g["id"]] for g in level] for level in levels],
    }


def with_estimates(plan: dict[str, Any], node_seconds: dict[str, float]) -> dict[str, Any]:
    """``plan`` with its nodes' past durations, what its ETA is computed from (core/timeline.py
    ``expected_fan_out_end``)."""
    mine = {n for g in plan["groups"] for n in g["nodes"]}
    known = {n: round(s, 3) for n, s in node_seconds.items() if n in mine}
    return {**plan, "node_seconds": known}


def worth_fanning_out(
    plan: dict[str, Any], node_seconds: dict[str, float], min_group_seconds: float
) -> bool:
    """Whether ``plan`` fans out at all (``fit_plan`` says how)."""
    return fit_plan(plan, node_seconds, min_group_seconds) is not None


def transitions(plan: dict[str, Any]) -> int:
    """State transitions a successful execution of ``plan`` makes (what Step Functions bills,
    $25 per million): the levels' Map, each level's inner Map, each group's task, the commit
    (the states its execution history shows entered; a rerun's reused groups make none)."""
    run = execution_input("", plan)["levels"]
    levels = len(run)
    groups = sum(len(level) for level in run)
    return 1 + levels + groups + 1


class Coordinator:
    """The state machine, through one lazily created Step Functions client."""

    def __init__(self, state_machine_arn: str, *, stepfunctions: Any = None) -> None:
        self.state_machine_arn = state_machine_arn
        self._client = stepfunctions

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client("stepfunctions")
        return self._client

    def start(self, job_id: str, plan: dict[str, Any]) -> str:
        """Start the job's execution, or find the one a first delivery started (same name,
        same input: Step Functions answers with it rather than starting another)."""
        with aws_errors(DEPENDENCY):
            try:
                resp = self.client.start_execution(
                    stateMachineArn=self.state_machine_arn,
                    name=job_id,
                    input=json.dumps(execution_input(job_id, plan)),
                )
            except Exception as exc:
                if error_code(exc) != "ExecutionAlreadyExists":
                    raise
                return self.execution_arn(job_id)  # it ran once already: not again
        return str(resp["executionArn"])

    def execution_arn(self, job_id: str) -> str:
        machine = self.state_machine_arn.replace(":stateMachine:", ":execution:", 1)
        return f"{machine}:{job_id}"

    def heartbeat(self, token: str) -> bool:
        """False when the execution no longer waits for this task (it failed, was stopped,
        or timed the task out): the group should stop."""
        with aws_errors(DEPENDENCY):
            try:
                self.client.send_task_heartbeat(taskToken=token)
            except Exception as exc:
                if error_code(exc) in {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}:
                    return False
                raise
        return True

    def succeed(self, token: str, output: dict[str, Any] | None = None) -> None:
        self._answer("send_task_success", taskToken=token, output=json.dumps(output or {}))

    def fail(self, token: str, error: str, cause: str) -> None:
        self._answer("send_task_failure", taskToken=token, error=error, cause=cause[:_CAUSE_MAX])

    def _answer(self, method: str, **kwargs: str) -> None:
        """An answer to a task the execution no longer waits for is moot, not an error."""
        with aws_errors(DEPENDENCY):
            try:
                getattr(self.client, method)(**kwargs)
            except Exception as exc:
                if error_code(exc) not in {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}:
                    raise


def coordinator_from_settings(settings: Any) -> Coordinator | None:
    arn = str(getattr(settings, "fan_out_state_machine_arn", "") or "")
    return Coordinator(arn) if arn else None
