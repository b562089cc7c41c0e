"""A job's fan-out plan: its pipeline cut into groups of nodes that can run on different
workers, and the levels they run in (every group of a level depends only on earlier levels).

Groups are Kedro's own: ``Pipeline.group_nodes_by("namespace")`` where the pipeline uses
namespaces (a top-level namespace is one group; a node without one is its own group). A
pipeline without namespaces is cut into its branches: a chain of nodes (each the only child
of the one before, which has no other child) stays one group, so a linear branch runs on one
worker and hands nothing over between its nodes. A job fans out only when some level holds
two or more groups; otherwise one worker runs it as before. Whether the groups are worth a
worker each (past node durations; small ones merged) is decided by core.fanout.fit_plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Group:
    id: str  # "g1", "g2", ... in the order the levels run them
    name: str  # the namespace, or the first node of a branch
    nodes: list[str]  # node names, in the pipeline's (topological) order
    depends_on: list[str] = field(default_factory=list)  # group ids
    # Where the consumer runs it, when not in an invocation (a task backend's name, set by
    # core.fanout.fit_plan for a group too long for one); the runner runs it the same way.
    compute: str | None = None


@dataclass(frozen=True)
class GroupPlan:
    groups: list[Group]
    levels: list[list[str]]  # group ids; each level runs after the one before
    free_outputs: list[str]  # the whole pipeline's free outputs: the job's results
    total_nodes: int
    # "namespace" (the user's own statement that the groups are independent) or "branches"
    # (the DAG's shape only): core.fanout.fit_plan treats groups never timed differently.
    grouped_by: str = "branches"

    @property
    def fans_out(self) -> bool:
        return any(len(level) > 1 for level in self.levels)

    def group(self, group_id: str) -> Group:
        for group in self.groups:
            if group.id == group_id:
                return group
        raise KeyError(group_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupPlan:
        return cls(
            groups=[Group(**group) for group in data["groups"]],
            levels=[list(level) for level in data["levels"]],
            free_outputs=list(data["free_outputs"]),
            total_nodes=int(data["total_nodes"]),
            grouped_by=str(data.get("grouped_by", "branches")),
        )


def _uses_namespaces(pipeline: Any) -> bool:
    return any(node.namespace for node in pipeline.nodes)


def _branches(pipeline: Any) -> list[tuple[str, list[str], set[str]]]:
    """(name, nodes, names of the groups it depends on), one per branch: chains merged."""
    deps = {node.name: {parent.name for parent in parents}
            for node, parents in pipeline.node_dependencies.items()}  # fmt: skip
    children: dict[str, set[str]] = {name: set() for name in deps}
    for name, parents in deps.items():
        for parent in parents:
            children[parent].add(name)
    owner: dict[str, str] = {}  # node -> the first node of its branch
    order = [node.name for node in pipeline.nodes]
    for name in order:
        parents = deps[name]
        single = next(iter(parents)) if len(parents) == 1 else None
        owner[name] = owner[single] if single and len(children[single]) == 1 else name
    branches: dict[str, list[str]] = {}
    for name in order:
        branches.setdefault(owner[name], []).append(name)
    return [
        (head, nodes, {owner[p] for n in nodes for p in deps[n]} - {head})
        for head, nodes in branches.items()
    ]


def _by_namespace(pipeline: Any) -> list[tuple[str, list[str], set[str]]]:
    return [
        (group.name, list(group.nodes), set(group.dependencies) - {group.name})
        for group in pipeline.group_nodes_by("namespace")
    ]


def _levels(raw: list[tuple[str, list[str], set[str]]]) -> list[list[str]] | None:
    """Group names by level; None if the groups depend on each other in a cycle (a namespace
    that both feeds and reads a node outside it)."""
    level: dict[str, int] = {}
    pending = {name: deps for name, _, deps in raw}
    while pending:
        ready = [name for name, deps in pending.items() if deps <= level.keys()]
        if not ready:
            return None
        for name in ready:
            level[name] = 1 + max((level[d] for d in pending[name]), default=-1)
            del pending[name]
    levels: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for name, _, _ in raw:
        levels[level[name]].append(name)
    return levels


def plan_groups(pipeline: Any) -> GroupPlan | None:
    """The plan for ``pipeline`` (a Kedro Pipeline, already filtered by the run options), or
    None where its groups cannot be ordered."""
    namespaced = _uses_namespaces(pipeline)
    raw = _by_namespace(pipeline) if namespaced else _branches(pipeline)
    levels = _levels(raw)
    if levels is None:
        return None
    ordered = (name for level in levels for name in level)
    ids = {name: f"g{i}" for i, name in enumerate(ordered, start=1)}
    by_name = {name: (nodes, deps) for name, nodes, deps in raw}
    groups = [
        Group(ids[name], name, by_name[name][0], sorted(ids[d] for d in by_name[name][1]))
        for level in levels
        for name in level
    ]
    return GroupPlan(
        groups=groups,
        levels=[[ids[name] for name in level] for level in levels],
        free_outputs=sorted(pipeline.outputs()),
        total_nodes=len(pipeline.nodes),
        grouped_by="namespace" if namespaced else "branches",
    )
