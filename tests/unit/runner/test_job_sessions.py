"""Jobs run in Kedro's KedroServiceSession (runner/session.py): one per project and env,
many runs each. The project's own hooks run once per job, with the job's env, parameters
and save version; one job's hooks never reach the next; a job's parameters, which come from
callers the service does not trust, cannot choose which dataset class Kedro imports."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kedro_jobs.runner.data import DataPlan
from kedro_jobs.runner.runner import Isolation, KedroRunner
from kedro_jobs.runner.session import job_session
from kedro_jobs.runner.types import RunRequest
from kedro_jobs_local.counting_project import write_project

_HOOKS = """
import os

from kedro.framework.hooks import hook_impl


class Recorder:
    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog):
        with open(os.environ["KEDRO_JOBS_TEST_HOOKS"], "a") as handle:
            params = ",".join(sorted(run_params["runtime_params"]))
            handle.write(f"{run_params['run_id']} {run_params['env']} {params}\\n")
"""


@pytest.fixture(scope="module")
def hooked_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = write_project(tmp_path_factory.mktemp("hooked") / "p", package="hooked_project")
    src = project / "src" / "hooked_project"
    (src / "hooks.py").write_text(_HOOKS)
    (src / "settings.py").write_text(
        "from hooked_project.hooks import Recorder\nHOOKS = (Recorder(),)\n"
    )
    (project / "conf" / "staging").mkdir()
    return project


def _run(runner: KedroRunner, job_id: str, **options: str) -> tuple[str, list[int]]:
    reports: list[int] = []

    def progress(completed: int, total: int, current: str | None, /) -> bool:
        reports.append(completed)
        return False

    request = RunRequest(job_id, "two_nodes", {"x": 2}, options)  # type: ignore[arg-type]
    outcome = runner.run(request, progress, deadline=time.monotonic() + 30)
    assert outcome.status == "completed", outcome.error_message
    return outcome.status, reports


@pytest.mark.parametrize("isolation", ["inline", "fork"])
def test_the_projects_hooks_run_once_a_job_with_its_env_parameters_and_save_version(
    hooked_project: Path,
    isolation: Isolation,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = tmp_path / "hooks.txt"
    monkeypatch.setenv("KEDRO_JOBS_TEST_HOOKS", str(lines))
    runner = KedroRunner(hooked_project, isolation=isolation)
    first = _run(runner, "job-a")
    second = _run(runner, "job-b", env="staging")
    third = _run(runner, "job-c")
    # One job's progress hook is gone before the next: each reports as the first did.
    assert first == second == third
    calls = [line.split(" ") for line in lines.read_text().splitlines()]
    assert [(env, params) for _, env, params in calls] == [
        ("None", "x"),  # the project's default: Kedro's own conf/local over conf/base
        ("staging", "x"),
        ("None", "x"),
    ]
    run_ids = [run_id for run_id, _, _ in calls]
    assert len(set(run_ids)) == 3  # each job its own save version, not a shared timestamp


def test_a_jobs_parameters_cannot_choose_a_dataset_class(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", package="typed_by_params_project")
    (project / "conf" / "base" / "catalog.yml").write_text(
        "doubled:\n  type: ${runtime_params:kind, kedro.io.MemoryDataset}\n"
    )
    runner = KedroRunner(project, isolation="inline")
    request = RunRequest("job-t", "two_nodes", {"kind": "kedro_datasets.pickle.PickleDataset"})
    outcome = runner.run(request, lambda *_: False, deadline=time.monotonic() + 30)
    assert outcome.status == "failed"
    assert "runtime_params" in (outcome.error_message or "")


def test_a_jobs_context_has_its_env_and_parameters(hooked_project: Path, tmp_path: Path) -> None:
    runner = KedroRunner(hooked_project, isolation="inline")
    plan = DataPlan.for_job(runner.project_path, "", tmp_path, "job-ctx", None)
    request = RunRequest("job-ctx", "two_nodes", {"x": 7}, {"env": "staging"})  # type: ignore[arg-type]
    context = job_session(hooked_project, request, plan).load_context()
    assert context.env == "staging" and context.params["x"] == 7


def test_a_jobs_own_hooks_register_every_hook_they_implement() -> None:
    """They show Kedro's hook manager only their hook implementations (registering is then
    quicker): none may be left out."""
    from kedro.framework.hooks import _create_hook_manager

    from kedro_jobs.runner.handover import ExportHook
    from kedro_jobs.runner.hooks import DataPlanHook, ProgressHook
    from kedro_jobs.runner.shared_config import SharedConfigHook

    manager = _create_hook_manager()
    expected = {
        ProgressHook: {"before_pipeline_run", "before_node_run", "after_node_run",
                       "after_dataset_saved", "on_pipeline_error"},
        DataPlanHook: {"before_pipeline_run"},
        SharedConfigHook: {"after_context_created"},
        ExportHook: {"after_node_run"},
    }  # fmt: skip
    for kind, hooks in expected.items():
        plugin = kind.__new__(kind)
        manager.register(plugin)
        assert {caller.name for caller in manager.get_hookcallers(plugin) or []} == hooks
        manager.unregister(plugin)
