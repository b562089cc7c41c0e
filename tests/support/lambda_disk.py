"""Lambda's disk on this machine: the consumer handler run as `nobody` in a private mount
namespace where the project folder is read-only, one warm process for a list of jobs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# One warm container: three invocations, one job each, then each job's record.
_INVOKE = """
import json, sys
from kedro_jobs_local.lambda_context import LocalContext
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


def run_as_lambda(
    project: Path, pipelines: list[str], env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """One SQS event a pipeline, in order, through the consumer handler; `env` is the
    function's environment (AWS endpoint, JOBS_DATA_ROOT, resource names)."""
    if os.geteuid() != 0:
        raise RuntimeError("running as nobody on a read-only mount needs root, as on CI")
    full = {
        **env,
        "PATH": os.environ["PATH"],
        "HOME": "/tmp",
        "MPLCONFIGDIR": "/tmp",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "KEDRO_PROJECT_PATH": str(project),
        "PROJECT": str(project),
        "PYTHON": sys.executable,
        "CODE": _INVOKE,
    }
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", _SCRIPT, "sh", *pipelines],
        env=full, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def readable_by_all(base: Path) -> None:
    for path in [base, *base.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
