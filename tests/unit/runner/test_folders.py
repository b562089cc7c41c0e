"""Folder datasets on a local data root: a folder a dataset replaces holds exactly the files
of the last job that committed it (never an earlier job's left over, never a mix of two
jobs'), a folder a dataset appends to keeps Kedro's append, and a path built from runtime
parameters cannot leave the data root."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from kedro_jobs.runner import folders as folders_module
from kedro_jobs.runner.runner import KedroRunner

from .conftest import run


def _files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()
    }


def _at_once(commit: Callable[[Path], object], staged: list[Path]) -> None:
    """Each folder committed by its own thread, all released at the same moment."""
    start = threading.Barrier(len(staged))

    def one(folder: Path) -> None:
        start.wait()
        commit(folder)

    threads = [threading.Thread(target=one, args=(folder,)) for folder in staged]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _root(runner: KedroRunner) -> Path:
    return Path(runner.data_root)


@pytest.mark.parametrize("isolation", ["inline", "fork"])
def test_a_partitioned_dataset_with_overwrite_holds_only_the_last_jobs_partitions(
    folders: KedroRunner, isolation: str
) -> None:
    folders.isolation = isolation  # type: ignore[assignment]
    try:
        first = run(folders, "partitions", {"n": 4, "tag": "first"})
        second = run(folders, "partitions", {"n": 2, "tag": "second"})
    finally:
        folders.isolation = "inline"

    assert first.status == second.status == "completed", second.error_message
    parts = _root(folders) / "data/03_primary/parts"
    # What `kedro run` leaves: 2 partitions, both the second run's (before: 4, two stale).
    assert _files(parts) == {"part-0.txt": "second 0", "part-1.txt": "second 1"}
    # Nothing left beside it from the swap.
    assert sorted(p.name for p in parts.parent.iterdir()) == ["parts"]
    assert second.outputs[0]["uri"] == str(parts)
    assert second.outputs[0]["files"] == 2 and second.outputs[0]["size"] == 16


def test_a_custom_dataset_writing_many_files_is_replaced_whole(folders: KedroRunner) -> None:
    run(folders, "shards", {"n": 4, "tag": "first"})
    second = run(folders, "shards", {"n": 2, "tag": "second"})

    assert second.status == "completed", second.error_message
    shards = _root(folders) / "data/04_feature/shards"
    assert _files(shards) == {"part-00000.txt": "second 0", "part-00001.txt": "second 1"}


def test_a_partitioned_dataset_without_overwrite_keeps_kedros_append(
    folders: KedroRunner,
) -> None:
    run(folders, "append", {"tag": "monday"})
    second = run(folders, "append", {"tag": "tuesday"})

    assert second.status == "completed", second.error_message
    assert _files(_root(folders) / "data/03_primary/appended") == {
        "monday.txt": "monday",
        "tuesday.txt": "tuesday",
    }


def test_an_incremental_dataset_checkpoint_behaves_as_in_kedro(folders: KedroRunner) -> None:
    increments = _root(folders) / "data/02_intermediate/increments"
    increments.mkdir(parents=True)
    for name in ("a", "b"):
        (increments / f"{name}.txt").write_text(name)

    first = run(folders, "incremental")
    (increments / "c.txt").write_text("c")
    second = run(folders, "incremental")
    third = run(folders, "incremental")

    # Each run loads only the partitions after the checkpoint its last run confirmed.
    assert first.results == {"seen": ["a", "b"]}, first.error_message
    assert second.results == {"seen": ["c"]}
    assert third.results == {"seen": []}
    assert (increments / "CHECKPOINT").read_text() == "c"


def _no_exchange(new: Path, target: Path) -> Path | None:
    raise NotImplementedError("RENAME_EXCHANGE")


@pytest.mark.parametrize("swap", ["exchange", "rename aside"])
def test_concurrent_commits_of_one_folder_leave_one_jobs_files_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    if swap == "rename aside":  # a file system without RENAME_EXCHANGE
        monkeypatch.setattr(folders_module, "_exchange", _no_exchange)
    target = tmp_path / "root" / "table"
    jobs = 4
    for round_ in range(15):
        staged = []
        for job in range(jobs):
            folder = tmp_path / f"staging-{round_}-{job}"
            for part in range(job + 1):  # job k writes k + 1 files, all tagged k
                (folder / f"part-{part}").parent.mkdir(parents=True, exist_ok=True)
                (folder / f"part-{part}").write_text(f"job {job}")
            staged.append(folder)
        _at_once(
            lambda folder: folders_module.publish_folder(
                folder, str(target), {}, whole=True, locks=""
            ),
            staged,
        )

        committed = _files(target)
        writers = set(committed.values())
        assert len(writers) == 1, f"round {round_}: a mix of {sorted(writers)}"
        job = int(writers.pop().split()[1])
        assert sorted(committed) == [f"part-{part}" for part in range(job + 1)]
        assert sorted(p.name for p in target.parent.iterdir()) == ["table"]


def test_without_an_atomic_exchange_the_folder_is_still_replaced_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folders_module, "_exchange", _no_exchange)
    target = tmp_path / "root" / "table"
    for tag, count in (("first", 4), ("second", 2)):
        staged = tmp_path / tag
        staged.mkdir()
        for part in range(count):
            (staged / f"part-{part}").write_text(tag)
        folders_module.publish_folder(staged, str(target), {}, whole=True, locks="")

    assert _files(target) == {"part-0": "second", "part-1": "second"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["table"]


@pytest.mark.parametrize(
    ("fname", "isolation"),
    [("../../../escaped.txt", "inline"), ("../../../../../../tmp/escaped.txt", "fork")],
)
def test_a_runtime_parameter_path_that_leaves_the_data_root_fails_the_job(
    folders: KedroRunner, fname: str, isolation: str
) -> None:
    folders.isolation = isolation  # type: ignore[assignment]
    try:
        outcome = run(folders, "named", {"fname": fname, "tag": "x"})
    finally:
        folders.isolation = "inline"

    assert outcome.status == "failed"
    assert "resolves outside the data root" in (outcome.error_message or "")
    assert "(node:" not in (outcome.error_message or "")
    root = _root(folders)
    assert not (root.parent / "escaped.txt").exists()
    assert not list(root.parent.glob("**/escaped.txt"))
    assert not Path("/tmp/escaped.txt").exists()


def test_a_runtime_parameter_path_inside_the_data_root_is_fine(folders: KedroRunner) -> None:
    outcome = run(folders, "named", {"fname": "sub/../kept.txt", "tag": "x"})

    assert outcome.status == "completed", outcome.error_message
    assert (_root(folders) / "data/07_model_output/kept.txt").read_text() == "x"
