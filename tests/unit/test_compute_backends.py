"""The compute backends' registry: every name the wire accepts has a backend, the API offers
one only where the deployment configures it, and a job whose node outlives its invocation
moves only to a backend this deployment can launch."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from kedro_jobs.core import compute
from kedro_jobs.core.compute import (
    BACKENDS,
    FARGATE,
    LAMBDA,
    EcsTaskLauncher,
    TaskBackend,
    backend,
    launchers_from_settings,
    long_group_backend,
    long_node_backend,
    task_command,
)
from kedro_jobs.core.errors import NotOffered
from kedro_jobs.core.jobs import check_offered
from kedro_jobs.core.requests import JobRequest
from kedro_jobs.core.settings import Settings
from kedro_jobs.names import COMPUTE_NAMES, Compute


def test_every_name_the_wire_accepts_is_a_registered_backend() -> None:
    assert tuple(BACKENDS) == get_args(Compute) == COMPUTE_NAMES == ("lambda", "fargate")
    assert all(BACKENDS[name].name == name for name in COMPUTE_NAMES)
    assert backend(None) is LAMBDA and backend("fargate") is FARGATE


def test_a_submission_naming_no_backend_is_refused_with_the_names() -> None:
    with pytest.raises(ValidationError) as refused:
        JobRequest.model_validate({"pipeline_name": "p", "compute": "gpu"})
    assert "'lambda' or 'fargate'" in str(refused.value)


def test_lambda_is_always_offered_and_fargate_only_with_a_cluster() -> None:
    bare = Settings(fargate_cluster="")
    check_offered(bare, "lambda", None)
    with pytest.raises(NotOffered) as refused:
        check_offered(bare, "fargate", None)
    assert "no FARGATE_CLUSTER" in str(refused.value)
    check_offered(Settings(fargate_cluster="jobs"), "fargate", None)


def test_launchers_exist_only_for_offered_task_backends() -> None:
    assert launchers_from_settings(Settings(fargate_cluster="")) == {}
    assert long_node_backend({}) is None
    launchers = launchers_from_settings(Settings(fargate_cluster="jobs"))
    assert set(launchers) == {"fargate"}
    assert isinstance(launchers["fargate"], EcsTaskLauncher)
    assert long_node_backend(launchers) is FARGATE
    assert compute.launcher_from_settings(Settings(fargate_cluster="jobs")) is not None


def test_a_task_backend_is_offered_by_its_own_setting_and_sets_its_own_budget() -> None:
    assert [b.name for b in compute.task_backends()] == ["fargate"]
    assert isinstance(FARGATE, TaskBackend) and FARGATE.offer_env == "FARGATE_CLUSTER"
    assert FARGATE.task_seconds(Settings(fargate_task_seconds=3600)) == 3600.0
    assert LAMBDA.offered(Settings(fargate_cluster=""))  # lambda needs no setting
    assert LAMBDA.in_consumer and not FARGATE.in_consumer


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_code_reaches_a_backend_only_through_the_registry() -> None:
    # So that adding a backend touches its own module and the registry, not its callers.
    package = Path(compute.__file__).parent
    backend_modules = {
        f"kedro_jobs.core.compute.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"
    } - {"kedro_jobs.core.compute.base"}
    roots = [package.parents[1], package.parents[3] / "local"]  # functions/kedro_jobs, local
    assert all((root / "__init__.py").exists() or root.name == "local" for root in roots)
    assert (roots[1] / "kedro_jobs_local" / "tasks.py").exists()
    reaching = sorted(
        str(path)
        for root in roots
        for path in root.rglob("*.py")
        if package not in path.parents and _imports(path) & backend_modules
    )
    assert backend_modules == {"kedro_jobs.core.compute.fargate", "kedro_jobs.core.compute.lambda_"}
    assert reaching == []


def test_long_groups_go_only_to_a_backend_this_deployment_launches() -> None:
    assert long_group_backend({}) is None
    assert long_group_backend(launchers_from_settings(Settings(fargate_cluster="jobs"))) is FARGATE


def test_a_group_task_names_its_job_group_and_claim_but_never_the_task_token() -> None:
    assert task_command("job-1") == ["job-1"]
    command = task_command("job-1", "g2", "dispatch:fargate/ab12cd34")
    assert command == ["job-1", "--group", "g2", "--claim", "dispatch:fargate/ab12cd34"]
    launcher = EcsTaskLauncher(Settings(fargate_cluster="c", fargate_subnets="s-1"), object())
    request = launcher.request("job-1", token="tok", group="g2", claim="dispatch:fargate/ab")
    [override] = request["overrides"]["containerOverrides"]
    assert override["command"] == ["job-1", "--group", "g2", "--claim", "dispatch:fargate/ab"]
    assert request["startedBy"] == "kedro-jobs/job-1/g2"
    # A task started for the same claim again is the same task (RunTask's clientToken).
    assert (
        request["clientToken"] == launcher.request("job-1", token="tok", group="g2")["clientToken"]
    )
