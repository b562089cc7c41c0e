"""The SAM CLI itself, offline: `sam validate --lint` and `sam build ApiFunction` (no Docker)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from .conftest import ROOT, SAM

ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}


def test_sam_validate_lints_the_template_with_the_config_file_under_infra() -> None:
    # `sam deploy --config-file infra/samconfig.toml` (README): SAM resolves a relative config
    # file from the template's directory, and its `lint = true` makes validate run cfn-lint
    # (`sam validate --lint`). One run checks both: cfn-lint is most of its cost.
    assert SAM.exists(), "run `make tools` (make test does) to install the SAM CLI"
    result = subprocess.run(
        [str(SAM), "validate", "-t", "template.yaml", "--config-file", "infra/samconfig.toml",
         "--region", "us-east-1", "--debug"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in result.stdout
    assert f"config file at '{ROOT / 'infra' / 'samconfig.toml'}'" in output
    assert "'lint': True" in output
    # The command line SAM ran with: the config's lint option became `--lint`.
    assert re.search(r"--template_file=\S+ .*--lint\b", output), output[-3000:]


_ROUTES = """
import json, sys
from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
routes = {}
for overrides in json.loads(sys.argv[2]):
    stacks, _ = SamLocalStackProvider.get_stacks(sys.argv[1], parameter_overrides=overrides)
    mounted = ApiProvider(stacks).api.routes
    routes[json.dumps(overrides)] = sorted(
        [r.path, r.function_name, r.payload_format_version] for r in mounted
    )
print(json.dumps(routes))
"""

_JWT = {"JwtIssuer": "https://issuer.example", "JwtAudience": "a"}


def test_sam_local_start_api_serves_the_routes_with_or_without_jwt() -> None:
    # What `sam local start-api` would mount (it needs Docker only to invoke): with or
    # without the JWT authorizer, the routes reach the API function. One interpreter for both
    # (importing the SAM CLI is most of the cost).
    python = SAM.with_name("python")
    result = subprocess.run(
        [str(python), "-c", _ROUTES, str(ROOT / "template.yaml"), json.dumps([{}, _JWT])],
        env=ENV, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    routes = json.loads(result.stdout.strip().splitlines()[-1])
    expected = [
        ["/", "ApiFunction", "2.0"],
        ["/api/v1", "ApiFunction", "2.0"],
        ["/api/v1/{proxy+}", "ApiFunction", "2.0"],
        ["/docs", "ApiFunction", "2.0"],
        ["/openapi.json", "ApiFunction", "2.0"],
        ["/ui/{proxy+}", "ApiFunction", "2.0"],
    ]
    assert routes == {json.dumps({}): expected, json.dumps(_JWT): expected}


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
