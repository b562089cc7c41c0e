"""The project's pipeline manifest: what the API shows and validates against."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_PARAMS_PREFIX = "params:"


def parameter_defaults(names: list[str], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The project's values of the parameters a pipeline reads (a dotted name's top-level key
    whole), what a run uses unless its request overrides them."""
    tops = sorted({name.split(".", 1)[0] for name in names} & set(parameters))
    return {top: parameters[top] for top in tops}


def describe_pipeline(pipeline: Any, parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    inputs = sorted(pipeline.inputs())
    names = [i.removeprefix(_PARAMS_PREFIX) for i in inputs if i.startswith("params:")]
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
        "parameters": names,
        "parameter_defaults": parameter_defaults(names, parameters or {}),
    }


def build_manifest(
    project: str, pipelines: Mapping[str, Any], parameters: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``parameters``: the project's base parameters (the submit form starts from them)."""
    from kedro import __version__ as kedro_version

    return {
        "project": project,
        "kedro_version": kedro_version,
        "generated_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "pipelines": {
            name: describe_pipeline(p, parameters) for name, p in sorted(pipelines.items())
        },
    }
