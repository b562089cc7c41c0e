"""The runner's request, outcome and progress types (no Kedro import: the consumer's handler
imports these at cold start)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from kedro_jobs.core.requests import RunOptions

# "continued": the run stopped at a node boundary with too little of the invocation left for
# the next node, and saved a checkpoint; another invocation goes on from it (RunOutcome).
Status = Literal["completed", "failed", "cancelled", "timed_out", "continued"]


@dataclass(frozen=True)
class RunRequest:
    job_id: str
    pipeline_name: str
    parameters: dict[str, Any]  # runtime params; dotted keys nest, as `kedro run --params`
    # The job's run options, as the request and its message carry them (an option not set
    # means Kedro's default); session.run_arguments makes them Kedro's.
    options: RunOptions = field(default_factory=RunOptions)
    # Continuation across invocations. ``checkpoint``: where an earlier segment of this job
    # saved what the remaining nodes need (None: the job starts from its first node).
    checkpoint: str | None = None
    # May this run stop at a node boundary and checkpoint (status "continued") when the time
    # left before ``deadline`` is shorter than the next node is expected to take? False where
    # no later invocation would go on (a Fargate task, the job's own time limit binding).
    may_continue: bool = False
    # Seconds each node took in earlier runs of this pipeline (by node name); a node with none
    # is expected to take as long as the longest node this run has seen, else a margin.
    node_estimates: dict[str, float] = field(default_factory=dict)
    segment: int = 1  # this run's segment number (1 for a job's first invocation)
    # Before a node with no estimate (and none run yet in this segment), go on only with at
    # least this much time left.
    continue_margin_seconds: float = 30.0
    # A node that outlives the invocation ends the run "timed_out"; with this set, the
    # checkpoint the run went on from is kept, so the job can go on elsewhere (on Fargate).
    keep_checkpoint_on_timeout: bool = False
    # A rerun from failure: ``checkpoint`` is the one job ``reuse_from`` (a failed, cancelled
    # or timed-out job) kept at its last good node boundary; the nodes it completed are not
    # run again (docs/long-jobs.md#rerun-from-failure).
    reuse_from: str | None = None

    def __post_init__(self) -> None:
        # A caller holding the options as JSON (a test, a benchmark): read once, checked
        # as a request's are.
        if not isinstance(self.options, RunOptions):
            object.__setattr__(self, "options", RunOptions.model_validate(self.options))


class ProgressSink(Protocol):
    """Called with (completed_nodes, total_nodes, current_node) at the start and after each
    node; returns True when the job should stop (a cancel was requested). Positional only, so
    any function of that shape fits."""

    def __call__(
        self, completed_nodes: int, total_nodes: int, current_node: str | None, /
    ) -> bool: ...


@dataclass(frozen=True)
class RunProgress:
    """Where a run got to: nodes that finished (their outputs saved), of how many, and the
    node that was running, failed or was next (None once nothing is left to run)."""

    completed: int = 0
    total: int = 0
    current: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    status: Status
    results: dict[str, Any] | None  # JSON-safe in-memory free outputs; only when completed
    error_message: str | None  # "ValueError: boom (node: clean)", or a sentence
    log: str  # the run's log records, one timestamped line each
    duration: float  # seconds
    progress: RunProgress = field(default_factory=RunProgress)
    # The datasets the run saved, committed to the data root (only when completed): dicts of
    # name, type, uri, version, size.
    outputs: list[dict[str, Any]] = field(default_factory=list)
    # Status "continued": the checkpoint to give the next segment's RunRequest.
    checkpoint: str | None = None
    # Seconds each node of this segment took (by node name), in the order they ran.
    node_durations: dict[str, float] = field(default_factory=dict)
    # Seconds this segment spent on checkpoints: loading the one it went on from and saving
    # its own (None: it did neither).
    checkpoint_seconds: float | None = None
    # The host was stopping (hand_back_running): a "timed_out" run was stopped for that, not
    # for its time, and its job goes on from the checkpoint it went on from (kept).
    handed_back: bool = False
    # A failed, cancelled or timed-out run: the checkpoint at its last good node boundary,
    # kept (not deleted) for a rerun from failure: one this run saved as it stopped, or the
    # one it went on from. None: nothing is kept (no node completed, or none could be saved).
    kept: str | None = None


class StopRun(Exception):
    """Raised at a node boundary to end the run early (cancel, the inline deadline, or a
    continuation in another invocation)."""

    def __init__(
        self,
        status: Status,
        message: str,
        checkpoint: str | None = None,
        checkpoint_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status: Status = status
        self.checkpoint = checkpoint  # status "continued": where the checkpoint was saved
        self.checkpoint_seconds = checkpoint_seconds  # loading the last one and saving it


CANCELLED_MESSAGE = "Cancelled by the user while running"


def timeout_message(budget: float) -> str:
    return (
        f"Job exceeded its time budget of {max(0.0, budget):.1f} s (the function's timeout "
        "less a safety margin) and was stopped"
    )


def error_message(error: BaseException, node: str | None) -> str:
    text = f"{type(error).__name__}: {error}"
    return f"{text} (node: {node})" if node else text
