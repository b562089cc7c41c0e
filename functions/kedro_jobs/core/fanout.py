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
# Step Functions limits: a failure's cause is at most 32,768 characters, its error 256.
_CAUSE_MAX = 32_000


class FanOutTask(BaseModel):
    """A message the state machine sends to the jobs queue."""

    model_config = ConfigDict(extra="forbid")

    fanout: Literal["group", "commit", "discard"]
    job_id: Annotated[StrictStr, StringConstraints(pattern=JOB_ID_PATTERN)]
    group: Annotated[StrictStr, StringConstraints(pattern=r"^g[0-9]{1,4}$")] | None = None
    token: Annotated[StrictStr, StringConstraints(min_length=1, max_length=1024)]


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


def execution_input(job_id: str, plan: dict[str, Any]) -> dict[str, Any]:
    """What the state machine iterates over: the levels, each a list of group ids."""
    return {"job_id": job_id, "levels": plan["levels"]}


def worth_fanning_out(
    plan: dict[str, Any], node_seconds: dict[str, float], min_group_seconds: float
) -> bool:
    """Whether two groups of one level each take at least ``min_group_seconds`` (their nodes'
    last durations, summed; a node never timed counts 0 s). Smaller groups are not worth a
    worker each: the hand-over and coordination cost about a second a group."""
    seconds = {
        group["id"]: sum(node_seconds.get(node, 0.0) for node in group["nodes"])
        for group in plan["groups"]
    }
    return any(
        sum(seconds[group_id] >= min_group_seconds for group_id in level) >= 2
        for level in plan["levels"]
    )


def transitions(plan: dict[str, Any]) -> int:
    """State transitions a successful execution of ``plan`` makes (what Step Functions bills,
    $25 per million): the levels' Map, each level's inner Map, each group's task, the commit
    (the states its execution history shows entered)."""
    levels = len(plan["levels"])
    groups = sum(len(level) for level in plan["levels"])
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
