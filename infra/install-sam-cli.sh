#!/usr/bin/env bash
# Install the AWS SAM CLI (.tools/sam) and checkov (.tools/checkov), each in its own
# virtualenv: they pin their own boto3 and other libraries, which must not fight the
# project's. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# uv installs each environment in seconds where pip takes a minute: the project's own (make
# install bootstraps it into .venv), else one bootstrapped here with pip from PyPI.
UV=${UV:-.venv/bin/uv}
if [ ! -x "$UV" ]; then
  UV=.tools/uv/bin/uv
  if [ ! -x "$UV" ]; then
    "$PYTHON" -m venv .tools/uv
    .tools/uv/bin/python -m pip install -qq "uv>=0.5"
  fi
fi
# A virtualenv (with pip, as before) at $1, and the requirement $2 in it.
install_into() {
  test -x "$1/bin/python" || "$PYTHON" -m venv "$1"
  "$UV" pip install -q --python "$1/bin/python" "$2"
}
VENV=.tools/sam
if [ ! -x "$VENV/bin/sam" ]; then
  install_into "$VENV" "aws-sam-cli>=1.120"
fi
SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" --version
# checkov (template security scan in make lint) pins its own libraries too.
CHECKOV=.tools/checkov
if [ ! -x "$CHECKOV/bin/checkov" ]; then
  install_into "$CHECKOV" "checkov>=3"
fi
