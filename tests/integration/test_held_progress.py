"""A quick job through the consumer against a real moto server, once its pipeline's past
runs say its nodes are quick: its only writes are the claim and the final write (no progress
write at its node boundary: runner/control.py), and its record still has the whole node
timeline and progress."""

from __future__ import annotations

from typing import Any

import pytest

from kedro_jobs.consumer import handler as consumer_handler
from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs
from kedro_jobs.runner import control
from tests.support.jobs import submitted

from .conftest import Aws, Invoke


def test_a_quick_job_is_written_twice_and_keeps_its_node_timeline(
    invoke: Invoke, store: ApiJobs, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What "soon" and "quick" mean is the rule's; a loaded machine takes over a second from the
    # claim to the first node boundary (the Kedro session), which would make this job not quick.
    monkeypatch.setattr(control, "REPORT_QUIET_SECONDS", 60.0)
    monkeypatch.setattr(control, "QUICK_NODE_SECONDS", 5.0)
    ArtifactStore(aws.resources.bucket, s3=aws.s3).put_json(
        "stats/nodes/two_nodes.json", {"start": 0.001, "double": 0.001}
    )
    job, body = submitted(store, "two_nodes", x=21)
    writes: list[str] = []

    def count(model: Any, **_: Any) -> None:
        writes.append(model.name)

    consumer_handler.consumer().store.client.meta.events.register(
        "before-call.dynamodb.UpdateItem", count
    )
    assert invoke(body) == {"batchItemFailures": []}
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert writes == ["UpdateItem", "UpdateItem"]  # the claim, the end
    assert done.progress is not None
    assert (done.progress.completed_nodes, done.progress.total_nodes) == (2, 2)
    assert done.nodes is not None
    assert [(n.name, n.status) for n in done.nodes] == [
        ("start", "completed"),
        ("double", "completed"),
    ]
    first, second = done.nodes
    assert first.started_at and first.finished_at and second.started_at and second.finished_at
    assert first.finished_at <= second.finished_at
    assert done.results == {"doubled": 42}
