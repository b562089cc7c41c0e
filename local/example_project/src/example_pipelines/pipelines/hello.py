"""hello: the smallest real pipeline, two nodes (used by the benchmarks)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline


def pick(x: int) -> int:
    return x


def double(value: int) -> int:
    return value * 2


def create_pipeline() -> Pipeline:
    return pipeline(
        [
            node(pick, "params:hello.x", "picked", name="pick"),
            node(double, "picked", "doubled", name="double"),
        ]
    )
