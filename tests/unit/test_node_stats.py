"""What earlier runs teach about a pipeline's nodes (consumer/segments.py): read once per
container while fresh, written only when a node's duration changed noticeably."""

from __future__ import annotations

from typing import Any, cast

from kedro_jobs.consumer.segments import (
    NODE_STATS_TTL_SECONDS,
    NodeStats,
    durations_changed,
    node_stats_key,
)
from kedro_jobs.core.artifacts import ArtifactStore, Versioned
from kedro_jobs.core.errors import DependencyUnavailable


class FakeArtifacts:
    """Objects with versions, conditional writes as S3 makes them."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.versions: dict[str, int] = {}
        self.gets = 0
        self.puts = 0
        self.down = False

    def write(self, key: str, value: Any) -> None:
        """Another container's write."""
        self.objects[key] = value
        self.versions[key] = self.versions.get(key, 0) + 1

    def get_json_versioned(self, key: str) -> Versioned:
        self.gets += 1
        if self.down:
            raise DependencyUnavailable("S3", "down")
        if key not in self.objects:
            return Versioned(None, None)
        return Versioned(self.objects[key], str(self.versions[key]))

    def put_json_if(self, key: str, value: Any, *, etag: str | None) -> str | None:
        self.puts += 1
        if self.down:
            raise DependencyUnavailable("S3", "down")
        current = self.versions.get(key)
        if (None if current is None else str(current)) != etag:
            return None
        self.write(key, value)
        return str(self.versions[key])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _stats(artifacts: FakeArtifacts, clock: Clock) -> NodeStats:
    return NodeStats(cast(ArtifactStore, artifacts), clock=clock)


def test_a_pipeline_run_again_reads_and_writes_its_node_durations_once() -> None:
    artifacts, clock = FakeArtifacts(), Clock()
    stats = _stats(artifacts, clock)
    known = stats.read("p")
    stats.update("p", known, {"a": 0.01, "b": 2.0})
    for _ in range(5):  # the same nodes, as long as before (within a second)
        known = stats.read("p")
        assert known == {"a": 0.01, "b": 2.0}
        stats.update("p", known, {"a": 0.02, "b": 2.3})
    assert (artifacts.gets, artifacts.puts) == (1, 1)


def test_a_node_that_took_noticeably_longer_is_written() -> None:
    artifacts, clock = FakeArtifacts(), Clock()
    stats = _stats(artifacts, clock)
    stats.update("p", stats.read("p"), {"a": 10.0})
    stats.update("p", stats.read("p"), {"a": 20.0})
    assert artifacts.objects[node_stats_key("p")] == {"a": 20.0}
    assert stats.read("p") == {"a": 20.0} and artifacts.gets == 1


def test_other_containers_updates_are_read_once_the_cache_is_stale() -> None:
    artifacts, clock = FakeArtifacts(), Clock()
    artifacts.write(node_stats_key("p"), {"a": 1.0})
    stats = _stats(artifacts, clock)
    stats.read("p")
    artifacts.write(node_stats_key("p"), {"a": 5.0})  # another container wrote
    assert stats.read("p") == {"a": 1.0}
    clock.now += NODE_STATS_TTL_SECONDS
    assert stats.read("p") == {"a": 5.0} and artifacts.gets == 2


def test_a_pipeline_not_timed_yet_is_read_again_until_another_container_times_it() -> None:
    artifacts, clock = FakeArtifacts(), Clock()
    stats = _stats(artifacts, clock)
    assert stats.read("p") == {}  # nothing recorded yet
    artifacts.write(node_stats_key("p"), {"a": 9.0})  # another container's first run
    assert stats.read("p") == {"a": 9.0}  # seen at once, not after the cache's lifetime
    assert stats.read("p") == {"a": 9.0} and artifacts.gets == 2  # then cached


def test_an_unreadable_store_gives_no_estimates_and_is_tried_again() -> None:
    artifacts, clock = FakeArtifacts(), Clock()
    artifacts.down = True
    stats = _stats(artifacts, clock)
    assert stats.read("p") == {}
    stats.update("p", {}, {"a": 1.0})  # not recorded: logged, not raised
    artifacts.down = False
    artifacts.write(node_stats_key("p"), {"a": 1.0})
    assert stats.read("p") == {"a": 1.0}


def test_a_stale_cache_merges_into_what_another_container_wrote_meanwhile() -> None:
    artifacts, clock = FakeArtifacts(), Clock()
    stats = _stats(artifacts, clock)
    stats.update("p", stats.read("p"), {"a": 10.0})
    artifacts.write(node_stats_key("p"), {"a": 10.0, "b": 50.0})  # another container
    stats.update("p", stats.read("p"), {"c": 7.0})  # its cached version is refused
    assert artifacts.objects[node_stats_key("p")] == {"a": 10.0, "b": 50.0, "c": 7.0}
    assert stats.read("p") == {"a": 10.0, "b": 50.0, "c": 7.0}


def test_durations_changed() -> None:
    assert durations_changed({}, {"a": 0.1})
    assert not durations_changed({"a": 0.1}, {"a": 0.9})
    assert durations_changed({"a": 0.1}, {"a": 1.2})
    assert not durations_changed({"a": 100.0}, {"a": 120.0})
    assert durations_changed({"a": 100.0}, {"a": 130.0})
