"""The runner's request, outcome and progress types (no Kedro import: the handler's module
imports these at cold start)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Status = Literal["completed", "failed", "cancelled", "timed_out"]


@dataclass(frozen=True)
class RunRequest:
    job_id: str
    pipeline_name: str
    parameters: dict[str, Any]  # runtime params, nested like `kedro run --params`
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
class RunOutcome:
    status: Status
    results: dict[str, Any] | None  # JSON-safe free outputs; only when completed
    error_message: str | None  # "ValueError: boom (node: clean)", or a sentence
    failed_node: str | None
    log: str  # the run's log records, one timestamped line each
    duration: float  # seconds


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
