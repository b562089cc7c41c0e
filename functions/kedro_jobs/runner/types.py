"""The runner's request, outcome and progress types (no Kedro import: the consumer's handler
imports these at cold start)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Status = Literal["completed", "failed", "cancelled", "timed_out"]


@dataclass(frozen=True)
class RunRequest:
    job_id: str
    pipeline_name: str
    parameters: dict[str, Any]  # runtime params; dotted keys nest, as `kedro run --params`
    options: dict[str, Any]  # tags, node_names, from_nodes, to_nodes, from_inputs, to_outputs,
    # namespaces, load_versions, env; a missing option means Kedro's default


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


class StopRun(Exception):
    """Raised at a node boundary to end the run early (cancel, or the inline deadline)."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status: Status = status


CANCELLED_MESSAGE = "Cancelled by the user while running"


def timeout_message(budget: float) -> str:
    return (
        f"Job exceeded its time budget of {max(0.0, budget):.1f} s (the function's timeout "
        "less a safety margin) and was stopped"
    )


def error_message(error: BaseException, node: str | None) -> str:
    text = f"{type(error).__name__}: {error}"
    return f"{text} (node: {node})" if node else text
