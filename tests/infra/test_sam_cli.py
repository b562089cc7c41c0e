"""The SAM CLI itself, offline: `sam validate --lint` and `sam build ApiFunction` (no Docker)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

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


def test_sam_reads_the_config_file_under_infra() -> None:
    # `sam deploy --config-file infra/samconfig.toml` (README): SAM resolves a relative
    # config file from the template's directory. validate reads the same file (lint = true).
    result = subprocess.run(
        [str(SAM), "validate", "-t", "template.yaml", "--config-file", "infra/samconfig.toml",
         "--region", "us-east-1", "--debug"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert f"config file at '{ROOT / 'infra' / 'samconfig.toml'}'" in output
    assert "'lint': True" in output


_ROUTES = """
import json, sys
from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
overrides = dict(arg.split("=", 1) for arg in sys.argv[2:])
stacks, _ = SamLocalStackProvider.get_stacks(sys.argv[1], parameter_overrides=overrides)
routes = ApiProvider(stacks).api.routes
print(json.dumps(sorted([r.path, r.function_name, r.payload_format_version] for r in routes)))
"""


@pytest.mark.parametrize("jwt", [[], ["JwtIssuer=https://issuer.example", "JwtAudience=a"]])
def test_sam_local_start_api_serves_the_routes(jwt: list[str]) -> None:
    # What `sam local start-api` would mount (it needs Docker only to invoke): with or
    # without the JWT authorizer, the routes reach the API function.
    python = SAM.with_name("python")
    result = subprocess.run(
        [str(python), "-c", _ROUTES, str(ROOT / "template.yaml"), *jwt],
        env=ENV, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    routes = json.loads(result.stdout.strip().splitlines()[-1])
    assert routes == [
        ["/", "ApiFunction", "2.0"],
        ["/api/v1", "ApiFunction", "2.0"],
        ["/api/v1/{proxy+}", "ApiFunction", "2.0"],
        ["/docs", "ApiFunction", "2.0"],
        ["/openapi.json", "ApiFunction", "2.0"],
        ["/ui/{proxy+}", "ApiFunction", "2.0"],
    ]


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
