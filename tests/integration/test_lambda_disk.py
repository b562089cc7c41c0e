"""Lambda's disk, simulated for real: the consumer handler runs as `nobody` with the project
folder mounted read-only (a private mount namespace), against the moto server, with the data
root on the moto bucket as the template sets it. A chain of jobs that save parquet, a
versioned pickle and a matplotlib figure completes, and the files are in the bucket."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.resources import LocalResources
from tests.support.data_project import expected_score, write_data_project

from .conftest import Aws

# One warm container: three invocations, one job each, then each job's record.
_INVOKE = """
import json, sys
from kedro_jobs.consumer.context import LocalContext
import kedro_jobs.consumer.handler as h
for pipeline in sys.argv[1:]:
    body = json.dumps({"version": 1, "pipeline_name": pipeline, "idempotency_key": pipeline})
    event = {"Records": [{
        "messageId": "m-" + pipeline, "receiptHandle": "r", "body": body,
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}]}
    print(json.dumps(h.handler(event, LocalContext(120))), flush=True)
"""

_SCRIPT = (
    'mount --bind "$PROJECT" "$PROJECT" && mount -o remount,bind,ro "$PROJECT" && '
    'touch "$PROJECT/probe" 2>/dev/null && echo "project is writable" >&2 && exit 9; '
    'exec setpriv --reuid=nobody --regid=nogroup --clear-groups "$PYTHON" -c "$CODE" "$@"'
)


@pytest.fixture
def readonly_project() -> Iterator[Path]:
    """The project in a folder `nobody` can read (pytest's tmp folders are root's only)."""
    base = Path(tempfile.mkdtemp(prefix="kedro-jobs-ro-"))
    try:
        project = write_data_project(base / "project")
        for path in [base, *base.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield project
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_chain_of_jobs_runs_as_nobody_on_a_read_only_project_with_data_on_s3(
    aws: Aws, stack: LocalResources, moto_server: MotoServer, readonly_project: Path
) -> None:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail("this test needs root and unshare (util-linux), as on CI")
    env = {
        **{k: v for k, v in os.environ.items() if k.startswith(("AWS_", "POWERTOOLS_"))},
        **stack.function_env("ConsumerFunction"),
        "PATH": os.environ["PATH"],
        "HOME": "/tmp",
        "MPLCONFIGDIR": "/tmp",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "KEDRO_PROJECT_PATH": str(readonly_project),
        "PROJECT": str(readonly_project),
        "PYTHON": sys.executable,
        "CODE": _INVOKE,
    }
    assert env["JOBS_DATA_ROOT"] == f"s3://{stack.bucket}/data"
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", _SCRIPT, "sh",
         "data_processing", "data_science", "__default__"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.split().count('{"batchItemFailures":') == 3, result.stdout
    jobs = {item["pipeline_name"]["S"]: item for item in aws.items() if "pipeline_name" in item}
    assert {name: job["status"]["S"] for name, job in jobs.items()} == {
        "data_processing": "completed", "data_science": "completed", "__default__": "completed"
    }, {name: job.get("error_message") for name, job in jobs.items()}  # fmt: skip
    science = json.loads(jobs["data_science"]["results"]["S"])
    assert science["metrics"]["score"] == expected_score(2, 1)
    keys = {
        obj["Key"]
        for obj in aws.s3.list_objects_v2(Bucket=stack.bucket, Prefix="data/")["Contents"]
    }
    assert "data/data/02_intermediate/clean_orders.parquet" in keys
    assert "data/data/03_primary/north_summary.csv" in keys
    assert sum(k.startswith("data/data/06_models/model.pickle/") for k in keys) == 2
    assert sum(k.startswith("data/data/08_reporting/chart.png/") for k in keys) == 1
    outputs = json.loads(jobs["__default__"]["outputs"]["S"])
    assert {o["name"] for o in outputs} == {
        "clean_orders", "north.region_summary", "south.region_summary", "model", "chart"
    }  # fmt: skip
    for output in outputs:
        assert output["uri"].startswith(f"s3://{stack.bucket}/data/data/")
        key = output["uri"].removeprefix(f"s3://{stack.bucket}/")
        assert aws.s3.head_object(Bucket=stack.bucket, Key=key)["ContentLength"] == output["size"]
    assert sorted(p.name for p in (readonly_project / "data").iterdir()) == ["01_raw"]
