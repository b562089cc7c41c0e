#!/usr/bin/env bash
# Install the AWS SAM CLI (.tools/sam) and checkov (.tools/checkov), each in its own
# virtualenv: they pin their own boto3 and other libraries, which must not fight the
# project's. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.tools/sam
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/sam" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -qq --upgrade pip
  "$VENV/bin/python" -m pip install -qq "aws-sam-cli>=1.120"
fi
SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" --version
# checkov (template security scan in make lint) pins its own libraries too.
CHECKOV=.tools/checkov
if [ ! -x "$CHECKOV/bin/checkov" ]; then
  "$PYTHON" -m venv "$CHECKOV"
  "$CHECKOV/bin/python" -m pip install -qq --upgrade pip
  "$CHECKOV/bin/python" -m pip install -qq "checkov>=3"
fi
