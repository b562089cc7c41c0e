"""Which nodes a run's filters select, worked out from the pipeline manifest (the API may not
import Kedro): the same rules as Kedro's ``Pipeline.filter``, so a run that would select no
node, or name a node, namespace or dataset the pipeline does not have, is refused at submit
with what exists, rather than accepted and failed later.

Each filter is applied to the whole pipeline and the results intersected, as Kedro does:
``tags`` keeps nodes with any of the tags; ``node_names`` those nodes; ``namespaces`` nodes in
any of them (or below); ``from_nodes``/``from_inputs`` those and everything downstream;
``to_nodes``/``to_outputs`` those and everything upstream.
"""

from __future__ import annotations

from collections.abc import Iterable

from kedro_jobs.core.errors import JobsError
from kedro_jobs.core.manifest import NodeInfo, PipelineInfo
from kedro_jobs.core.requests import RunOptions

# At most this many names are listed in a refusal (a large project has hundreds).
_LISTED = 30


class NothingSelected(JobsError):
    """The run options select no node of the pipeline, or name what it does not have."""


def _listed(names: Iterable[str]) -> str:
    ordered = sorted(set(names))
    shown = ", ".join(ordered[:_LISTED]) or "(none)"
    return shown + (f", ... ({len(ordered)} in all)" if len(ordered) > _LISTED else "")


def _dataset(name: str) -> str:
    """A dataset's name without its transcoding (``table@pandas`` is ``table``)."""
    return name.split("@", 1)[0]


def _closure(nodes: list[NodeInfo], start: set[str], *, downstream: bool) -> set[str]:
    """``start`` and every node downstream of it (that reads what they write), or upstream
    (that writes what they read), through datasets (transcoding aside)."""

    def ends(node: NodeInfo, near: bool) -> set[str]:
        # Near: the datasets along which the chosen reach further (their outputs going
        # downstream); far: those a candidate must share to join (its inputs).
        return {_dataset(d) for d in (node.outputs if near == downstream else node.inputs)}

    chosen = set(start)
    reached = {d for n in nodes if n.name in chosen for d in ends(n, True)}
    grew = True
    while grew:
        grew = False
        for node in nodes:
            if node.name not in chosen and reached & ends(node, False):
                chosen.add(node.name)
                reached |= ends(node, True)
                grew = True
    return chosen


def _downstream(nodes: list[NodeInfo], start: set[str]) -> set[str]:
    return _closure(nodes, start, downstream=True)


def _upstream(nodes: list[NodeInfo], start: set[str]) -> set[str]:
    return _closure(nodes, start, downstream=False)


def selected_nodes(pipeline: PipelineInfo, run_options: RunOptions) -> set[str]:
    """The names of the nodes ``run_options`` select; NothingSelected saying why, and what
    exists, if none or if a filter names what the pipeline does not have."""
    options = run_options.filters()
    nodes = pipeline.nodes
    names = {n.name for n in nodes}
    datasets = {_dataset(d) for n in nodes for d in (*n.inputs, *n.outputs)}
    where = f"pipeline {pipeline.name!r}"

    def known_nodes(option: str) -> set[str]:
        given = set(options[option])
        unknown = given - names
        if unknown:
            raise NothingSelected(
                f"{option}: {where} has no node named {_listed(unknown)}; "
                f"its nodes: {_listed(names)}"
            )
        return given

    def known_datasets(option: str) -> set[str]:
        given = {_dataset(d) for d in options[option]}
        unknown = given - datasets
        if unknown:
            raise NothingSelected(
                f"{option}: {where} has no dataset named {_listed(unknown)}; "
                f"its datasets: {_listed(datasets)}"
            )
        return given

    if not options:
        return names  # no filter: the whole pipeline, as Kedro runs it
    subsets: list[tuple[str, set[str]]] = []
    if options.get("tags"):
        tags = set(options["tags"])
        subsets.append(("tags", {n.name for n in nodes if tags & set(n.tags)}))
    if options.get("node_names"):
        subsets.append(("node_names", known_nodes("node_names")))
    if options.get("namespaces"):
        spaces = {n.namespace for n in nodes if n.namespace}
        unmatched = [
            s
            for s in options["namespaces"]
            if not any(x == s or x.startswith(f"{s}.") for x in spaces)
        ]
        if unmatched:
            raise NothingSelected(
                f"namespaces: {where} has no node in namespace {_listed(unmatched)}; "
                f"its namespaces: {_listed(spaces)}"
            )
        wanted = options["namespaces"]
        subsets.append(
            (
                "namespaces",
                {
                    n.name
                    for n in nodes
                    if n.namespace
                    and any(n.namespace == s or n.namespace.startswith(f"{s}.") for s in wanted)
                },
            )
        )
    if options.get("from_nodes"):
        subsets.append(("from_nodes", _downstream(nodes, known_nodes("from_nodes"))))
    if options.get("to_nodes"):
        subsets.append(("to_nodes", _upstream(nodes, known_nodes("to_nodes"))))
    if options.get("from_inputs"):
        given = known_datasets("from_inputs")
        first = {n.name for n in nodes if given & {_dataset(i) for i in n.inputs}}
        subsets.append(("from_inputs", _downstream(nodes, first)))
    if options.get("to_outputs"):
        given = known_datasets("to_outputs")
        last = {n.name for n in nodes if given & {_dataset(o) for o in n.outputs}}
        subsets.append(("to_outputs", _upstream(nodes, last)))
    chosen = set(names)
    for _, subset in subsets:
        chosen &= subset
    if not chosen:
        used = ", ".join(option for option, _ in subsets) or "the pipeline itself"
        tags = {t for n in nodes for t in n.tags}
        raise NothingSelected(
            f"The run options ({used}) select no node of {where}. Its nodes: {_listed(names)}; "
            f"its tags: {_listed(tags)}"
        )
    return chosen
