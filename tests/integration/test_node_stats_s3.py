"""Past node durations on a real moto S3 (consumer/segments.py NodeStats): workers that write
at the same moment from different containers keep each other's nodes (S3 conditional
writes), and a job whose nodes took as long as before makes no request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from kedro_jobs.consumer.segments import NODE_STATS_WRITE_ATTEMPTS, NodeStats, node_stats_key
from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs_local.moto_server import MotoServer

from .conftest import Aws

PIPELINE = "fan_out"


class Requests:
    """The S3 requests a client sent, by operation name."""

    def __init__(self, s3: Any) -> None:
        self.sent: list[str] = []
        s3.meta.events.register("before-call.s3", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.sent.append(model.name)

    def count(self, operation: str) -> int:
        return self.sent.count(operation)


@pytest.fixture
def containers(aws: Aws, moto_server: MotoServer) -> Iterator[tuple[NodeStats, NodeStats]]:
    """Two containers' NodeStats, each with its own S3 client (and its own cache)."""
    clients = [boto3.client("s3", endpoint_url=moto_server.endpoint_url) for _ in range(2)]
    yield (
        NodeStats(ArtifactStore(aws.resources.bucket, s3=clients[0])),
        NodeStats(ArtifactStore(aws.resources.bucket, s3=clients[1])),
    )
    for s3 in clients:
        s3.close()


def _stored(aws: Aws) -> Any:
    return ArtifactStore(aws.resources.bucket, s3=aws.s3).get_json(node_stats_key(PIPELINE))


@pytest.mark.parametrize("earlier", [None, {"join": 2.0}], ids=["first_run", "timed_before"])
def test_groups_ending_together_on_two_workers_keep_each_others_durations(
    aws: Aws, containers: tuple[NodeStats, NodeStats], earlier: dict[str, float] | None
) -> None:
    if earlier is not None:
        ArtifactStore(aws.resources.bucket, s3=aws.s3).put_json(node_stats_key(PIPELINE), earlier)
    one, two = containers
    # Both read before either writes: each holds a version the other is about to replace.
    known_one, known_two = one.read(PIPELINE), two.read(PIPELINE)
    requests = Requests(two.artifacts.client)
    one.update(PIPELINE, known_one, {"g1_train": 600.0})
    two.update(PIPELINE, known_two, {"g2_train": 700.0})
    assert _stored(aws) == {**(earlier or {}), "g1_train": 600.0, "g2_train": 700.0}
    # The second writer's put was refused (412), then it read again and wrote the merge.
    assert requests.count("PutObject") == 2 and requests.count("GetObject") == 1
    # Each container now plans with both groups' nodes (the second at once; the first
    # once its cache is stale, as before).
    assert two.read(PIPELINE) == _stored(aws)


def test_a_container_writes_again_over_its_own_version_without_reading(
    aws: Aws, containers: tuple[NodeStats, NodeStats]
) -> None:
    one, _ = containers
    one.update(PIPELINE, one.read(PIPELINE), {"a": 10.0})
    requests = Requests(one.artifacts.client)
    one.update(PIPELINE, one.read(PIPELINE), {"a": 30.0})
    assert requests.sent == ["PutObject"]  # its cached ETag is still the object's
    assert _stored(aws) == {"a": 30.0}


def test_nothing_is_written_when_the_durations_did_not_change_noticeably(
    aws: Aws, containers: tuple[NodeStats, NodeStats]
) -> None:
    one, two = containers
    one.update(PIPELINE, one.read(PIPELINE), {"a": 10.0, "b": 0.5})
    requests = Requests(two.artifacts.client)
    for _ in range(3):
        two.update(PIPELINE, two.read(PIPELINE), {"a": 10.8, "b": 0.1})
    assert requests.sent == ["GetObject"]  # one read, then its cache; no write
    assert _stored(aws) == {"a": 10.0, "b": 0.5}


def test_a_node_another_worker_already_recorded_is_not_written_again(
    aws: Aws, containers: tuple[NodeStats, NodeStats]
) -> None:
    one, two = containers
    known_one, known_two = one.read(PIPELINE), two.read(PIPELINE)
    one.update(PIPELINE, known_one, {"shared": 100.0})
    requests = Requests(two.artifacts.client)
    two.update(PIPELINE, known_two, {"shared": 101.0})  # refused, read again: as long
    assert requests.sent == ["PutObject", "GetObject"]
    assert _stored(aws) == {"shared": 100.0}


def test_a_write_that_keeps_losing_is_given_up_without_failing(
    aws: Aws, containers: tuple[NodeStats, NodeStats], moto_server: MotoServer
) -> None:
    one, _ = containers
    other = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    writes = iter(range(100))

    def another_worker_writes_first(**_: Any) -> None:
        other.put_object(
            Bucket=aws.resources.bucket,
            Key=node_stats_key(PIPELINE),
            Body=f'{{"other": {next(writes) + 1000.0}}}'.encode(),
        )

    requests = Requests(one.artifacts.client)
    one.artifacts.client.meta.events.register(
        "before-call.s3.PutObject", another_worker_writes_first
    )
    one.update(PIPELINE, one.read(PIPELINE), {"a": 10.0})  # logged, not raised
    other.close()
    assert requests.count("PutObject") == NODE_STATS_WRITE_ATTEMPTS
    assert _stored(aws) == {"other": 1000.0 + NODE_STATS_WRITE_ATTEMPTS - 1}
