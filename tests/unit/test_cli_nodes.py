"""The client works out which nodes a job runs from the manifest and its run options; Kedro's
own `Pipeline.filter` (what the consumer runs) is the reference."""

from __future__ import annotations

from typing import Any

import pytest
from kedro.pipeline import Pipeline, node, pipeline

from kedro_jobs.cli.nodes import failed_node, node_states, run_nodes


def _f(*args: Any) -> Any:
    return args[0] if args else None


def _project() -> Pipeline:
    return pipeline(
        [
            node(_f, "params:x", "raw", name="load", tags=["io"]),
            node(_f, "raw", "clean", name="clean"),
            node(_f, ["clean", "params:y"], "features", name="featurise", tags=["ml"]),
            node(_f, "features", "model", name="train", tags=["ml"]),
            node(_f, "clean", "report", name="report", tags=["io"]),
            pipeline([node(_f, "clean", "scored", name="score")], namespace="eval"),
        ]
    )


def _manifest_nodes(p: Pipeline) -> list[dict[str, Any]]:
    return [
        {
            "name": n.name,
            "inputs": list(n.inputs),
            "outputs": list(n.outputs),
            "tags": sorted(n.tags),
            "namespace": n.namespace,
        }
        for n in p.nodes
    ]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"tags": ["ml"]},
        {"node_names": ["clean", "train"]},
        {"from_nodes": ["clean"]},
        {"to_nodes": ["train"]},
        {"from_inputs": ["features"]},
        {"to_outputs": ["features", "report"]},
        {"namespaces": ["eval"]},
        {"from_nodes": ["clean"], "to_nodes": ["featurise"]},
        {"tags": ["io"], "from_nodes": ["clean"]},
    ],
)
def test_the_run_nodes_are_those_kedro_runs(options: dict[str, Any]) -> None:
    full = _project()
    kedro_options = {
        "tags": options.get("tags"),
        "node_names": options.get("node_names"),
        "from_nodes": options.get("from_nodes"),
        "to_nodes": options.get("to_nodes"),
        "from_inputs": options.get("from_inputs"),
        "to_outputs": options.get("to_outputs"),
        "node_namespaces": options.get("namespaces"),
    }
    expected = {n.name for n in full.filter(**kedro_options).nodes}
    ours = [n["name"] for n in run_nodes(_manifest_nodes(full), options)]
    assert set(ours) == expected
    # In the pipeline's own order: the order the sequential runner runs them.
    assert ours == [n.name for n in full.nodes if n.name in expected]


def _job(status: str, **progress: Any) -> dict[str, Any]:
    return {"status": status, "progress": progress or None, "error_message": None}


def test_node_states_follow_the_progress() -> None:
    names = ["a", "b", "c"]
    running = _job("running", total_nodes=3, completed_nodes=1, current_node="b")
    assert node_states(running, names) == [("a", "done"), ("b", "running"), ("c", "pending")]
    assert [s for _, s in node_states(_job("completed"), names)] == ["done"] * 3
    cancelled = _job("cancelled", total_nodes=3, completed_nodes=2, current_node="c")
    assert [s for _, s in node_states(cancelled, names)] == ["done", "done", "skipped"]
    # Counts from another list of nodes say nothing about ours.
    other = _job("running", total_nodes=5, completed_nodes=2, current_node="b")
    assert [s for _, s in node_states(other, names)] == ["pending", "running", "pending"]


def test_a_failed_node_is_named_by_progress_or_by_the_error() -> None:
    names = ["a", "b", "c"]
    job = {
        "status": "failed",
        "progress": {"total_nodes": 0, "completed_nodes": 0, "current_node": None},
        "error_message": "ValueError: boom (x) (node: b)",
    }
    assert failed_node(job) == "b"
    assert [s for _, s in node_states(job, names)] == ["done", "failed", "skipped"]
    assert failed_node({**job, "status": "completed"}) is None
