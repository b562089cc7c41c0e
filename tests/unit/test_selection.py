"""Run options checked against the manifest at submit (core/selection.py): Kedro's filter
rules without Kedro."""

from __future__ import annotations

from typing import Any

import pytest

from kedro_jobs.core.manifest import Manifest
from kedro_jobs.core.requests import RunOptions
from kedro_jobs.core.selection import NothingSelected, selected_nodes

PIPELINE = Manifest.model_validate(
    {
        "pipelines": {
            "p": {
                "nodes": [
                    {"name": "load", "inputs": ["params:n"], "outputs": ["raw"], "tags": ["prep"]},
                    {"name": "clean", "inputs": ["raw"], "outputs": ["table@pandas"]},
                    {
                        "name": "m.train",
                        "inputs": ["table@spark"],
                        "outputs": ["model"],
                        "tags": ["ml"],
                        "namespace": "m",
                    },
                    {"name": "report", "inputs": ["model"], "outputs": ["summary"]},
                ]
            }
        }
    }
).pipelines["p"]


@pytest.mark.parametrize(
    ("options", "nodes"),
    [
        ({}, {"load", "clean", "m.train", "report"}),
        ({"tags": ["prep", "nope"]}, {"load"}),
        ({"namespaces": ["m"]}, {"m.train"}),
        ({"from_nodes": ["clean"]}, {"clean", "m.train", "report"}),
        ({"to_nodes": ["m.train"]}, {"load", "clean", "m.train"}),
        ({"from_inputs": ["table"], "to_outputs": ["model"]}, {"m.train"}),
        ({"node_names": ["load", "report"], "tags": ["prep"]}, {"load"}),
    ],
)
def test_filters_select_as_kedro_does(options: dict[str, Any], nodes: set[str]) -> None:
    assert selected_nodes(PIPELINE, RunOptions(**options)) == nodes


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"tags": ["nope"]}, "select no node of pipeline 'p'. Its nodes: clean, load, m.train"),
        ({"tags": ["prep"], "namespaces": ["m"]}, "its tags: ml, prep"),
        ({"node_names": ["train"]}, "no node named train; its nodes: clean, load, m.train"),
        ({"namespaces": ["x"]}, "no node in namespace x; its namespaces: m"),
        ({"from_inputs": ["nope"]}, "no dataset named nope; its datasets: model, params:n, raw"),
    ],
)
def test_filters_that_select_nothing_say_what_exists(options: dict[str, Any], says: str) -> None:
    with pytest.raises(NothingSelected) as refused:
        selected_nodes(PIPELINE, RunOptions(**options))
    assert says in str(refused.value)
