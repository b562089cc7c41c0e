"""The SAM CLI itself, offline: `sam validate --lint` and `sam build ApiFunction` (no Docker)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .conftest import ROOT, SAM

ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}


def test_sam_validate_lint() -> None:
    assert SAM.exists(), "run `make tools` (make test does) to install the SAM CLI"
    result = subprocess.run(
        [str(SAM), "validate", "--lint", "-t", "template.yaml", "--region", "us-east-1"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout


def test_sam_build_api_function_without_docker(tmp_path: Path) -> None:
    build = tmp_path / "build"
    result = subprocess.run(
        [str(SAM), "build", "ApiFunction", "-t", "template.yaml", "--build-dir", str(build)],
        cwd=ROOT, env=ENV, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    artifact = build / "ApiFunction"
    for package in ("kedro_jobs", "fastapi", "mangum", "aws_lambda_powertools", "pydantic"):
        assert (artifact / package).is_dir(), package
    assert not (artifact / "kedro").exists()  # the API function ships without Kedro
    size = sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())
    assert size < 250 * 1024 * 1024  # Lambda's limit for an unzipped package
