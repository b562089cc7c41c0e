"""The project's pipeline manifest: what the API shows and validates against."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_PARAMS_PREFIX = "params:"


def describe_pipeline(pipeline: Any) -> dict[str, Any]:
    inputs = sorted(pipeline.inputs())
    return {
        "nodes": [
            {
                "name": node.name,
                "inputs": list(node.inputs),
                "outputs": list(node.outputs),
                "tags": sorted(node.tags),
                "namespace": node.namespace,
            }
            for node in pipeline.nodes
        ],
        # Free inputs the catalog must provide; parameters are listed on their own.
        "inputs": [i for i in inputs if not i.startswith(_PARAMS_PREFIX) and i != "parameters"],
        "outputs": sorted(pipeline.outputs()),
        "parameters": [i.removeprefix(_PARAMS_PREFIX) for i in inputs if i.startswith("params:")],
    }


def build_manifest(project: str, pipelines: Mapping[str, Any]) -> dict[str, Any]:
    from kedro import __version__ as kedro_version

    return {
        "project": project,
        "kedro_version": kedro_version,
        "generated_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "pipelines": {name: describe_pipeline(p) for name, p in sorted(pipelines.items())},
    }
