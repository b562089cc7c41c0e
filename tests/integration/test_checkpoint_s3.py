"""A job continued across invocations with its data root on S3 (the moto server), as the
template deploys it: its checkpoints live under s3://<bucket>/data/.kedro-jobs/checkpoints/
and are gone once it completes; its files are committed to the bucket only then."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kedro_jobs.runner.runner import KedroRunner
from kedro_jobs.runner.types import RunRequest
from kedro_jobs_local.counting_project import RECORD_VAR, executions
from kedro_jobs_local.resources import LocalResources
from tests.support.continuation_project import (
    NODES,
    segment_request,
    write_continuation_project,
)

from .conftest import Aws


def _keys(aws: Aws, bucket: str, prefix: str) -> set[str]:
    listed = aws.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {obj["Key"] for obj in listed.get("Contents", [])}


@pytest.mark.parametrize("isolation", ["fork", "inline"])
def test_a_job_continued_on_an_s3_data_root_checkpoints_to_the_bucket(
    aws: Aws,
    stack: LocalResources,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    isolation: str,
) -> None:
    record = tmp_path / "executions.txt"
    monkeypatch.setenv(RECORD_VAR, str(record))
    root = f"s3://{stack.bucket}/data"
    runner = KedroRunner(
        write_continuation_project(tmp_path / "project"),
        isolation="fork" if isolation == "fork" else "inline",
        data_root=root,
        staging_dir=str(tmp_path / "staging"),
    )
    prefix = "data/.kedro-jobs/checkpoints/job-s3/"

    first = runner.run(segment_request("job-s3"), lambda *_: False, deadline=time.monotonic() + 30)

    assert first.status == "continued"
    assert first.checkpoint == f"{root}/.kedro-jobs/checkpoints/job-s3/1"
    saved = _keys(aws, stack.bucket, prefix)
    assert f"{prefix}1/manifest.json" in saved
    assert any(key.startswith(f"{prefix}1/memory/") for key in saved)
    assert any(key.startswith(f"{prefix}1/staged/") for key in saved)
    assert not _keys(aws, stack.bucket, "data/data/")  # nothing committed yet

    second = runner.run(
        segment_request("job-s3", checkpoint=first.checkpoint, segment=2),
        lambda *_: False,
        deadline=time.monotonic() + 30,
    )

    assert second.status == "continued"
    # The one it went on from stays until the next segment reads the new one.
    assert {key.split("/")[4] for key in _keys(aws, stack.bucket, prefix)} == {"1", "2"}

    # The last segment; then the job in one run, to compare results.
    last = runner.run(
        segment_request("job-s3", checkpoint=second.checkpoint, segment=3),
        lambda *_: False,
        deadline=time.monotonic() + 30,
    )

    assert last.status == "completed", last.error_message
    assert executions(record) == dict.fromkeys(NODES, 1)
    assert not _keys(aws, stack.bucket, prefix)
    committed = _keys(aws, stack.bucket, "data/data/")
    assert "data/data/02_intermediate/table.csv" in committed
    assert sum(k.startswith("data/data/06_models/model.pickle/") for k in committed) == 1
    assert last.results is not None and last.results["early"] == {"started_with": 6}
    whole = runner.run(
        RunRequest("job-s3-whole", "steps", {}, {}),
        lambda *_: False,
        deadline=time.monotonic() + 30,
    )
    assert whole.status == "completed" and whole.results == last.results
