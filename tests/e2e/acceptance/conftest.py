"""`make acceptance PROJECT=path`: the service driven end to end on a real Kedro project that
nobody here wrote. Collected only when KEDRO_JOBS_ACCEPTANCE_PROJECT names one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.lambda_disk import readable_by_all

PROJECT = os.environ.get("KEDRO_JOBS_ACCEPTANCE_PROJECT", "")
if not PROJECT:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
def project_copy() -> Iterator[Path]:
    """A fresh copy of the project (runs write into its data/), readable by `nobody`."""
    base = Path(tempfile.mkdtemp(prefix="kedro-jobs-acceptance-"))
    try:
        copy = base / "project"
        shutil.copytree(
            PROJECT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__")
        )
        readable_by_all(base)
        yield copy
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pair() -> dict[str, Any]:
    """The pipeline and the two parameter sets of the concurrent pairs
    (KEDRO_JOBS_ACCEPTANCE_PAIR, JSON)."""
    spec: dict[str, Any] = json.loads(
        os.environ.get(
            "KEDRO_JOBS_ACCEPTANCE_PAIR",
            '{"pipeline": "data_science", "after": ["data_processing"],'
            ' "params": [{"model_options.test_size": 0.2}, {"model_options.test_size": 0.3}]}',
        )
    )
    return spec
