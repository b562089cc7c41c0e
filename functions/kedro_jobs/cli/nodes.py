"""Which nodes a job runs and where each one is, from the pipeline manifest and the record's
``progress`` (counts and the node running now)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

TERMINAL = frozenset({"completed", "failed", "cancelled"})
Node = dict[str, Any]


def _closure(nodes: list[Node], start: Iterable[int], step: Callable[[int], list[int]]) -> set[int]:
    seen = set(start)
    frontier = list(seen)
    while frontier:
        frontier = [j for i in frontier for j in step(i) if j not in seen]
        seen.update(frontier)
    return seen


def run_nodes(nodes: list[Node], options: dict[str, Any]) -> list[Node]:
    """The nodes a run with these options executes, in the pipeline's order: like Kedro, each
    option filters the whole pipeline and the run keeps the nodes every filter kept."""
    index = range(len(nodes))
    inputs = [set(n.get("inputs") or []) for n in nodes]
    outputs = [set(n.get("outputs") or []) for n in nodes]

    def consumers(i: int) -> list[int]:
        return [j for j in index if inputs[j] & outputs[i]]

    def producers(i: int) -> list[int]:
        return [j for j in index if outputs[j] & inputs[i]]

    def given(name: str) -> set[str]:
        value = options.get(name)
        return set(value) if isinstance(value, list) else set()

    def in_namespace(node: Node, wanted: set[str]) -> bool:
        ns = node.get("namespace") or ""
        return any(ns == w or ns.startswith(f"{w}.") for w in wanted)

    names = [n.get("name") for n in nodes]
    subsets: list[set[int]] = []
    if tags := given("tags"):
        subsets.append({i for i in index if tags & set(nodes[i].get("tags") or [])})
    if wanted := given("node_names"):
        subsets.append({i for i in index if names[i] in wanted})
    if wanted := given("namespaces"):
        subsets.append({i for i in index if in_namespace(nodes[i], wanted)})
    if wanted := given("from_nodes"):
        subsets.append(_closure(nodes, (i for i in index if names[i] in wanted), consumers))
    if wanted := given("to_nodes"):
        subsets.append(_closure(nodes, (i for i in index if names[i] in wanted), producers))
    if wanted := given("from_inputs"):
        subsets.append(_closure(nodes, (i for i in index if inputs[i] & wanted), consumers))
    if wanted := given("to_outputs"):
        subsets.append(_closure(nodes, (i for i in index if outputs[i] & wanted), producers))
    return [nodes[i] for i in index if all(i in s for s in subsets)]


def failed_node(job: dict[str, Any]) -> str | None:
    """The node a failed job stopped at: its progress, else the error's ``(node: name)``."""
    if job.get("status") != "failed":
        return None
    current = (job.get("progress") or {}).get("current_node")
    if current:
        return str(current)
    message = job.get("error_message") or ""
    marker = message.rfind("(node: ")
    if marker >= 0 and message.rstrip().endswith(")"):
        return message[marker + len("(node: ") : message.rstrip().rfind(")")]
    return None


def node_states(job: dict[str, Any], names: list[str]) -> list[tuple[str, str]]:
    """Each run node's state: done, running, failed, pending or skipped (the run ended first).

    Nodes run one at a time in this order, so the first ``completed_nodes`` are done; that
    holds only when the list is the run's own (same length as ``total_nodes``)."""
    status = job.get("status")
    progress = job.get("progress") or {}
    completed = int(progress.get("completed_nodes") or 0)
    exact = len(names) == int(progress.get("total_nodes") or 0)
    failed = failed_node(job)
    failed_at = names.index(failed) if failed in names else None
    states = []
    for i, name in enumerate(names):
        if status == "completed":
            state = "done"
        elif failed_at is not None and i == failed_at:
            state = "failed"
        elif (exact and i < completed) or (failed_at is not None and i < failed_at):
            state = "done"
        elif status == "running" and name == progress.get("current_node"):
            state = "running"
        elif status in TERMINAL:
            state = "skipped"
        else:
            state = "pending"
        states.append((name, state))
    return states
