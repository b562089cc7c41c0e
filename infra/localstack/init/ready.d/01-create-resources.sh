#!/usr/bin/env bash
# LocalStack "ready" hook: create template.yaml's resources with kedro-jobs' own code.
# Runs inside the LocalStack container (its Python has boto3 and PyYAML); the variables let
# the same script run anywhere, e.g. against a moto server in the tests.
set -euo pipefail
ROOT=${KEDRO_JOBS_ROOT:-/opt/kedro-jobs}
# LocalStack's own interpreter (it has boto3 and PyYAML), else whatever python3 is on PATH.
DEFAULT_PYTHON=/opt/code/localstack/.venv/bin/python
[ -x "$DEFAULT_PYTHON" ] || DEFAULT_PYTHON=python3
PYTHON=${KEDRO_JOBS_PYTHON:-$DEFAULT_PYTHON}
ENDPOINT=${KEDRO_JOBS_ENDPOINT:-http://localhost:4566}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
"$PYTHON" "$ROOT/local/kedro_jobs_local/resources.py" \
  --endpoint-url "$ENDPOINT" --template "$ROOT/template.yaml" \
  --stack-name "${KEDRO_JOBS_STACK:-kedro-jobs}"
