"""A checkpoint is only ever read as its job's earlier segment wrote it: signed under the
deployment's key, every file matching its signed digest. One that is missing or damaged fails
the job saying the checkpoint is unreadable; one unsigned, altered or signed with another key
is refused before anything of it is unpickled (a pickle planted under the data root runs no
code), and no node runs."""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path

import pytest

from kedro_jobs.runner.runner import KedroRunner
from kedro_jobs.runner.signed import Signer
from kedro_jobs.runner.types import RunOutcome
from tests.support.continuation_project import segment_request


def _resume(runner: KedroRunner, checkpoint: str) -> RunOutcome:
    return runner.run(
        segment_request("job-t", checkpoint=checkpoint, segment=2),
        lambda *_: False,
        deadline=time.monotonic() + 30,
    )


@pytest.fixture
def checkpoint(continuing: KedroRunner) -> Path:
    """Segment 1 of job-t, stopped with its checkpoint saved."""
    first = continuing.run(
        segment_request("job-t"), lambda *_: False, deadline=time.monotonic() + 30
    )
    assert first.status == "continued" and first.checkpoint
    return Path(first.checkpoint)


class _Planted:
    """What an attacker able to write under .kedro-jobs/ would put there."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _failed(outcome: RunOutcome, *expected: str) -> str:
    assert outcome.status == "failed"
    message = outcome.error_message or ""
    for text in expected:
        assert text in message
    assert "UnpicklingError" not in message and "invalid load key" not in message
    assert outcome.progress.completed == 0 or outcome.progress.current is None
    return message


def test_a_signed_checkpoint_is_resumed(continuing: KedroRunner, checkpoint: Path) -> None:
    assert _resume(continuing, str(checkpoint)).status == "continued"


def test_a_planted_pickle_is_refused_before_it_is_unpickled(
    continuing: KedroRunner, checkpoint: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "code-ran"
    (checkpoint / "memory" / "0.pkl").write_bytes(pickle.dumps(_Planted(marker)))

    outcome = _resume(continuing, str(checkpoint))

    _failed(outcome, f"The checkpoint {checkpoint} was altered", "memory/0.pkl", "refused")
    assert not marker.exists()


def test_a_damaged_pickle_is_refused_not_an_unpickling_error(
    continuing: KedroRunner, checkpoint: Path
) -> None:
    (checkpoint / "memory" / "0.pkl").write_bytes(b"not a pickle")

    _failed(_resume(continuing, str(checkpoint)), "was altered", "refused")


def test_an_unsigned_checkpoint_is_refused(continuing: KedroRunner, checkpoint: Path) -> None:
    manifest = checkpoint / "manifest.json"
    manifest.write_text(json.dumps(json.loads(manifest.read_text())["manifest"]))

    _failed(_resume(continuing, str(checkpoint)), "is not signed: refused")


def test_an_altered_manifest_is_refused(continuing: KedroRunner, checkpoint: Path) -> None:
    manifest = checkpoint / "manifest.json"
    signed = json.loads(manifest.read_text())
    signed["manifest"]["remaining"] = ["third"]  # skip a node
    manifest.write_text(json.dumps(signed))

    _failed(_resume(continuing, str(checkpoint)), "was altered or signed with another key")


def test_a_checkpoint_signed_with_another_key_is_refused(
    continuing: KedroRunner, checkpoint: Path
) -> None:
    signer = continuing.signer
    continuing.signer = Signer(b"another deployment's key")
    try:
        outcome = _resume(continuing, str(checkpoint))
    finally:
        continuing.signer = signer

    _failed(outcome, "SIGNING_KEY")


def test_a_missing_file_is_unreadable(continuing: KedroRunner, checkpoint: Path) -> None:
    (checkpoint / "memory" / "0.pkl").unlink()

    _failed(_resume(continuing, str(checkpoint)), f"The checkpoint {checkpoint} is unreadable")


def test_a_truncated_manifest_is_unreadable(continuing: KedroRunner, checkpoint: Path) -> None:
    manifest = checkpoint / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])

    _failed(_resume(continuing, str(checkpoint)), f"The checkpoint {checkpoint} is unreadable")


def test_a_refused_checkpoint_is_deleted_with_the_job(
    continuing: KedroRunner, checkpoint: Path
) -> None:
    (checkpoint / "memory" / "0.pkl").write_bytes(b"not a pickle")

    _resume(continuing, str(checkpoint))

    assert not checkpoint.parent.exists()


def test_runners_sharing_the_deployments_key_resume_each_others_checkpoints(
    continuing: KedroRunner, checkpoint: Path
) -> None:
    """Another container of the same deployment (a runner with the same key) goes on."""
    signer = continuing.signer
    continuing.signer = Signer(b"the deployment's key")
    try:
        first = continuing.run(
            segment_request("job-u"), lambda *_: False, deadline=time.monotonic() + 30
        )
        continuing.signer = Signer("the deployment's key")  # as read from the settings
        assert first.checkpoint
        second = continuing.run(
            segment_request("job-u", checkpoint=first.checkpoint, segment=2),
            lambda *_: False,
            deadline=time.monotonic() + 30,
        )
    finally:
        continuing.signer = signer
    assert second.status == "continued", second.error_message
