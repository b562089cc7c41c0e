from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from kedro_jobs_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".tools" / "sam" / "bin" / "sam"


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


class _PolicyLoader:
    """The managed policies SAM attaches, without asking IAM (offline)."""

    def load(self) -> dict[str, str]:
        names = [
            "AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess",
            "AWSXRayDaemonWriteAccess",
            "AWSLambdaSQSQueueExecutionRole",
        ]
        return {name: f"arn:aws:iam::aws:policy/service-role/{name}" for name in names}


def transformed(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> Any:
    """samtranslator's transform, as `sam validate` runs it: code locations are placeholders."""
    import copy

    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sam = copy.deepcopy(template)
    for spec in sam["Resources"].values():
        if spec["Type"] == "AWS::Serverless::Function":
            props = spec["Properties"]
            if props.get("PackageType") == "Image":
                props["ImageUri"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/consumer:1"
            else:
                props["CodeUri"] = "s3://bucket/code.zip"
    return transform(sam, parameters or {}, _PolicyLoader())


@pytest.fixture(scope="session")
def cfn(template: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = transformed(template)
    return result
