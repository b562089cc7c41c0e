"""Folder datasets on an S3 data root (the moto server), as the template deploys it: a folder a
dataset replaces holds exactly the last committing job's files, a folder it appends to keeps
every job's, two jobs committing one folder at once leave one job's files whole, and the lock
that serialises them is never left behind (a dead committer's is broken)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kedro_jobs.runner import folders
from kedro_jobs.runner.runner import KedroRunner
from kedro_jobs.runner.types import RunOutcome, RunRequest
from kedro_jobs_local.resources import LocalResources
from tests.support.folder_project import write_folder_project

from .conftest import Aws


def _objects(aws: Aws, bucket: str, prefix: str) -> dict[str, str]:
    listed = aws.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        obj["Key"][len(prefix) :]: aws.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
        .read()
        .decode()
        for obj in listed
    }


@pytest.fixture(scope="module")
def s3_folder_runner(tmp_path_factory: pytest.TempPathFactory) -> KedroRunner:
    base = tmp_path_factory.mktemp("folders-s3")
    return KedroRunner(
        write_folder_project(base / "project", package="folder_s3_project"),
        isolation="inline",
        staging_dir=str(base / "staging"),
    )


def _run(runner: KedroRunner, pipeline: str, params: dict[str, object]) -> RunOutcome:
    return runner.run(
        RunRequest("job-folders", pipeline, params, {}),
        lambda *_: False,
        deadline=time.monotonic() + 30,
    )


@pytest.mark.parametrize(
    ("pipeline", "folder", "names"),
    [
        ("partitions", "data/03_primary/parts/", ["part-0.txt", "part-1.txt"]),
        ("shards", "data/04_feature/shards/", ["part-00000.txt", "part-00001.txt"]),
    ],
)
def test_a_folder_replaced_on_s3_holds_only_the_last_jobs_files(
    aws: Aws,
    stack: LocalResources,
    s3_folder_runner: KedroRunner,
    pipeline: str,
    folder: str,
    names: list[str],
) -> None:
    s3_folder_runner.data_root = f"s3://{stack.bucket}/data"
    first = _run(s3_folder_runner, pipeline, {"n": 4, "tag": "first"})
    second = _run(s3_folder_runner, pipeline, {"n": 2, "tag": "second"})

    assert first.status == second.status == "completed", second.error_message
    # Before: 4 objects, two of them the first job's.
    assert _objects(aws, stack.bucket, f"data/{folder}") == {
        names[0]: "second 0",
        names[1]: "second 1",
    }
    assert second.outputs[0]["uri"] == f"s3://{stack.bucket}/data/{folder.rstrip('/')}"
    assert not _objects(aws, stack.bucket, "data/.kedro-jobs/locks/")  # released


def test_a_partitioned_dataset_that_appends_keeps_every_jobs_partitions_on_s3(
    aws: Aws, stack: LocalResources, s3_folder_runner: KedroRunner
) -> None:
    s3_folder_runner.data_root = f"s3://{stack.bucket}/data"
    _run(s3_folder_runner, "append", {"tag": "monday"})
    _run(s3_folder_runner, "append", {"tag": "tuesday"})

    assert _objects(aws, stack.bucket, "data/data/03_primary/appended/") == {
        "monday.txt": "monday",
        "tuesday.txt": "tuesday",
    }


def _at_once(commit: Callable[[Path], object], staged: list[Path]) -> list[BaseException]:
    """Each folder committed by its own thread, all released at the same moment; returns
    what they raised."""
    start = threading.Barrier(len(staged))
    errors: list[BaseException] = []

    def one(folder: Path) -> None:
        start.wait()
        try:
            commit(folder)
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=one, args=(folder,)) for folder in staged]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _staged(tmp_path: Path, name: str, count: int) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for part in range(count):
        (folder / f"part-{part}").write_text(name)
    return folder


def test_concurrent_commits_of_one_s3_folder_leave_one_jobs_files_whole(
    aws: Aws, stack: LocalResources, tmp_path: Path
) -> None:
    target = f"s3://{stack.bucket}/data/table"
    locks = f"s3://{stack.bucket}/data/.kedro-jobs/locks"
    jobs = 3
    for round_ in range(4):
        staged = [_staged(tmp_path, f"job{job}-round{round_}", 2 * job + 1) for job in range(jobs)]
        errors = _at_once(
            lambda folder: folders.publish_folder(folder, target, {}, whole=True, locks=locks),
            staged,
        )

        assert errors == []
        committed = _objects(aws, stack.bucket, "data/table/")
        writers = set(committed.values())
        assert len(writers) == 1, f"round {round_}: a mix of {sorted(writers)}"
        job = int(writers.pop().split("-")[0][len("job") :])
        assert sorted(committed) == sorted(f"part-{part}" for part in range(2 * job + 1))
        assert not _objects(aws, stack.bucket, "data/.kedro-jobs/locks/")


def test_a_lock_left_by_a_dead_committer_is_broken_once_stale(
    aws: Aws, stack: LocalResources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = f"s3://{stack.bucket}/data/table"
    locks = f"s3://{stack.bucket}/data/.kedro-jobs/locks"
    monkeypatch.setattr(folders, "LOCK_WAIT_SECONDS", 0.0)
    folders.publish_folder(_staged(tmp_path, "a", 1), target, {}, whole=True, locks=locks)
    import fsspec

    fs, root = fsspec.core.url_to_fs(target)
    lock = folders._lock_path(fs, target, root, locks)
    aws.s3.put_object(Bucket=stack.bucket, Key=lock.split("/", 1)[1], Body=b"{}")  # died

    with pytest.raises(folders.FolderBusy, match="another job kept committing this folder"):
        folders.publish_folder(_staged(tmp_path, "b", 1), target, {}, whole=True, locks=locks)
    assert _objects(aws, stack.bucket, "data/table/") == {"part-0": "a"}  # nothing changed

    monkeypatch.setattr(folders, "LOCK_STALE_SECONDS", -1.0)  # as if 10 minutes had passed
    folders.publish_folder(_staged(tmp_path, "c", 2), target, {}, whole=True, locks=locks)
    assert _objects(aws, stack.bucket, "data/table/") == {"part-0": "c", "part-1": "c"}
    assert not _objects(aws, stack.bucket, "data/.kedro-jobs/locks/")


def test_a_spark_read_on_s3_without_hadoop_aws_is_refused_before_any_node_runs(
    aws: Aws, stack: LocalResources, s3_folder_runner: KedroRunner
) -> None:
    s3_folder_runner.data_root = f"s3://{stack.bucket}/data"
    aws.s3.put_object(
        Bucket=stack.bucket, Key="data/data/01_raw/events/part-0.parquet", Body=b"PAR1"
    )

    outcome = _run(s3_folder_runner, "spark_read", {"n": 1, "tag": "x"})

    assert outcome.status == "failed"
    message = outcome.error_message or ""
    assert "SparkCannotReadS3" in message and "(node:" not in message
    assert f"would read s3://{stack.bucket}/data/data/01_raw/events through Spark" in message
    assert "hadoop-aws" in message and "spark.jars.packages" in message
    assert outcome.progress.completed == 0
    assert not _objects(aws, stack.bucket, "data/data/03_primary/parts/")  # nothing ran


def test_a_job_whose_folder_stays_locked_fails_saying_so_and_commits_nothing(
    aws: Aws,
    stack: LocalResources,
    s3_folder_runner: KedroRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3_folder_runner.data_root = root = f"s3://{stack.bucket}/data"
    target = f"{root}/data/03_primary/parts"
    monkeypatch.setattr(folders, "LOCK_WAIT_SECONDS", 0.0)  # no time to wait for it
    import fsspec

    fs, path = fsspec.core.url_to_fs(target)
    lock = folders._lock_path(fs, target, path, f"{root}/.kedro-jobs/locks")
    aws.s3.put_object(Bucket=stack.bucket, Key=lock.split("/", 1)[1], Body=b"{}")  # held

    outcome = _run(s3_folder_runner, "partitions", {"n": 2, "tag": "blocked"})

    assert outcome.status == "failed"
    assert "Outputs could not be committed" in (outcome.error_message or "")
    assert "another job kept committing this folder" in (outcome.error_message or "")
    assert not _objects(aws, stack.bucket, "data/data/03_primary/parts/")
