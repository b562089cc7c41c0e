"""The node timeline on the job record (``nodes``, ``eta``), written by the consumer's own
progress writes while a real Kedro run goes, against a real moto server."""

from __future__ import annotations

import threading
from pathlib import Path

from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs
from kedro_jobs.core.timeline import NodeRun
from tests.support.jobs import submitted

from .conftest import Aws, Invoke


def test_a_completed_job_lists_each_node_in_run_order_with_its_times(
    invoke: Invoke, store: ApiJobs
) -> None:
    job, body = submitted(store, "two_nodes", x=21)
    assert invoke(body) == {"batchItemFailures": []}
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert done.nodes is not None
    assert [(n.name, n.status, n.segment, n.compute) for n in done.nodes] == [
        ("start", "completed", 1, "lambda"),
        ("double", "completed", 1, "lambda"),
    ]
    first, second = done.nodes
    assert first.started_at and first.finished_at and second.started_at and second.finished_at
    assert first.duration is not None and first.duration >= 0
    assert first.finished_at <= second.finished_at
    assert abs((second.finished_at - second.started_at).total_seconds() - second.duration) < 0.01
    assert done.eta is None  # an ended job is not expected to end


def test_a_failed_job_names_the_node_that_failed(invoke: Invoke, store: ApiJobs) -> None:
    job, body = submitted(store, "failing")
    assert invoke(body) == {"batchItemFailures": []}
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED and failed.nodes
    assert [(n.name, n.status) for n in failed.nodes] == [
        ("start", "completed"),
        ("boom", "failed"),
    ]
    assert failed.nodes[-1].finished_at is not None


def test_a_running_job_shows_its_running_node_and_an_eta_from_past_runs(
    invoke: Invoke, store: ApiJobs, aws: Aws, record: Path
) -> None:
    # Past runs of the pipeline took 2 s in its first node and 1 s in its second.
    ArtifactStore(aws.resources.bucket, s3=aws.s3).put_json(
        "stats/nodes/slow_start.json", {"nap": 2.0, "finish": 1.0}
    )
    job, body = submitted(store, "slow_start", seconds=2.0)
    seen: list[tuple[list[NodeRun], object]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.05):
            current = store.get(job.id)
            if current is not None and current.nodes and current.status is JobStatus.RUNNING:
                seen.append((current.nodes, current.eta))
                return

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        assert invoke(body) == {"batchItemFailures": []}
    finally:
        stop.set()
        thread.join()
    assert seen, "the running node was never recorded"
    nodes, eta = seen[0]
    assert [(n.name, n.status) for n in nodes] == [("nap", "running")]
    assert nodes[0].started_at is not None and nodes[0].finished_at is None
    assert eta is not None and eta > nodes[0].started_at
