"""Which nodes a rerun from failure (or a continuation) runs, and what it carries over from
the stopped run, for real Kedro pipelines (no run)."""

from __future__ import annotations

from kedro.pipeline import node, pipeline

from kedro_jobs.runner.checkpoint import left_to_run


def _f(*args: object) -> object:
    return args


def _diamond() -> list[object]:
    """load -> (left, right) -> join -> report; ``right`` also reads a parameter."""
    return list(
        pipeline(
            [
                node(_f, "params:x", "raw", name="load"),
                node(_f, "raw", "l", name="left"),
                node(_f, ["raw", "params:k"], "r", name="right"),
                node(_f, ["l", "r"], "joined", name="join"),
                node(_f, "joined", "report", name="report"),
            ]
        ).nodes
    )


def _names(nodes: list[object]) -> list[str]:
    return [n.name for n in nodes]  # type: ignore[attr-defined]


def test_every_node_that_did_not_complete_runs_and_what_depends_on_it() -> None:
    nodes = _diamond()
    order = _names(nodes)
    done = order[: order.index("join")]  # the join failed

    remaining, produced, needed = left_to_run(nodes, done)

    assert _names(remaining) == ["join", "report"]
    assert produced == {"raw", "l", "r"}
    assert needed == {"l", "r"}  # ``raw`` is no longer read: not carried


def test_a_completed_branch_is_reused_while_the_other_runs_again() -> None:
    nodes = _diamond()
    assert _names(nodes) == ["load", "left", "right", "join", "report"]  # Kedro's run order

    remaining, produced, needed = left_to_run(nodes, ["load", "left"])  # ``right`` failed

    assert _names(remaining) == ["right", "join", "report"]
    assert produced == {"raw", "l"}
    # The branch that runs again reads the first node's output, the join the completed
    # branch's: both carried; parameters never are (they come with the request).
    assert needed == {"raw", "l"}


def test_nothing_completed_runs_everything_and_carries_nothing() -> None:
    nodes = _diamond()

    remaining, produced, needed = left_to_run(nodes, [])

    assert _names(remaining) == _names(nodes)
    assert produced == set() and needed == set()
