"""`kedro-jobs submit` reads parameters and run options as `kedro run` does. Kedro's own
reader (OmegaConf's dot-list, which `kedro run --params` uses) is the reference."""

from __future__ import annotations

from typing import Any

import pytest
from omegaconf import OmegaConf

from kedro_jobs.cli.commands import request_body
from kedro_jobs.cli.main import build_parser
from kedro_jobs.cli.params import (
    UsageError,
    merge,
    parse_list,
    parse_load_versions,
    parse_params,
)


def kedro_reads(text: str) -> dict[str, Any]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    result: dict[str, Any] = OmegaConf.to_container(OmegaConf.from_dotlist(items))  # type: ignore[assignment]
    return result


@pytest.mark.parametrize(
    "text",
    [
        "n_rows=10",
        "model_options.test_size=0.3,model_options.random_state=3",
        "a.b.c=deep,a.b.d=1e3,a.x=-4",
        "flag=true,other=False,switch=on,none=null,tilde=~,empty=",
        "name=abc,quoted='1',dquoted=\"2\",spaced=  x  ",
        "day=2024-01-01,version=1.0.0,hex=0x10,under=1_000,dot=.5,exp=1e-3",
        "list=[1],text=None",
    ],
)
def test_params_are_read_as_kedro_reads_them(text: str) -> None:
    assert parse_params(text) == kedro_reads(text)


def test_dotted_keys_nest_and_repeated_params_merge() -> None:
    first = parse_params("model_options.test_size=0.3")
    second = parse_params("model_options.features=[a],seed=7")
    assert merge(first, second) == {
        "model_options": {"test_size": 0.3, "features": ["a"]},
        "seed": 7,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("n_rows", "must be key=value"),
        ("=3", "empty key"),
        ("a..b=3", "empty key"),
        ("a=1,a.b=2", "which is a value"),
    ],
)
def test_bad_params_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_params(text)


def test_node_lists_split_outside_brackets() -> None:
    assert parse_list("a, b,,c") == ["a", "b", "c"]
    assert parse_list("split([x,y]) -> [z],other") == ["split([x,y]) -> [z]", "other"]


def test_load_versions() -> None:
    assert parse_load_versions("cars:2024-01-01T00.00.00.000Z,boats:v1") == {
        "cars": "2024-01-01T00.00.00.000Z",
        "boats": "v1",
    }
    with pytest.raises(UsageError, match="dataset:version"):
        parse_load_versions("cars")


def test_submit_flags_become_the_apis_request() -> None:
    args = build_parser().parse_args(
        [
            "submit", "data_science",
            "--params", "model_options.test_size=0.3,name=x",
            "--params", "model_options.seed=1",
            "--tags", "a,b", "--tags", "c",
            "--nodes", "split", "--from-nodes", "f1", "--to-nodes", "t1",
            "--from-inputs", "raw", "--to-outputs", "model",
            "--namespaces", "ns", "--load-versions", "raw:v1", "--env", "prod",
        ]
    )  # fmt: skip
    assert request_body(args) == {
        "pipeline_name": "data_science",
        "parameters": {"model_options": {"test_size": 0.3, "seed": 1}, "name": "x"},
        "tags": ["a", "b", "c"],
        "node_names": ["split"],
        "from_nodes": ["f1"],
        "to_nodes": ["t1"],
        "from_inputs": ["raw"],
        "to_outputs": ["model"],
        "namespaces": ["ns"],
        "load_versions": {"raw": "v1"},
        "env": "prod",
    }


def test_connection_options_go_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--api", "http://a", "--token", "t", "list"])
    after = parser.parse_args(["list", "--api", "http://b"])
    neither = parser.parse_args(["list"])
    assert (before.api, before.token) == ("http://a", "t")
    assert after.api == "http://b"
    assert neither.api is None and neither.token is None
