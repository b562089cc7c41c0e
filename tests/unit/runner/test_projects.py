"""Projects as they arrive: the bundled example, and a project baked into an image without
its pyproject.toml. Kedro's project settings are process-wide; the runner configures its own
project again when another was configured since."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kedro_jobs.runner.project import project_path_from_env
from kedro_jobs.runner.runner import KedroRunner

from .conftest import run, write_runner_project

EXAMPLE = Path(__file__).resolve().parents[3] / "local" / "example_project"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[KedroRunner, Path]:
    copy = tmp_path_factory.mktemp("example") / "example_project"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    # Its saved datasets are committed to a data root of their own, as on Lambda.
    data_root = copy.parent / "data_root"
    return KedroRunner(copy, isolation="fork", data_root=str(data_root)), copy


def test_the_example_projects_data_loading_runs_for_real(
    example: tuple[KedroRunner, Path],
) -> None:
    runner, project = example
    before = _files(project)
    outcome = run(runner, "data_loading")
    assert outcome.status == "completed", outcome.error_message
    assert outcome.results is not None
    summary = outcome.results["orders_summary"]
    assert summary["rows_generated"] == 200
    assert summary["rows_kept"] + summary["rows_dropped"] == 200
    assert set(summary["revenue_by_region"]) == {"north", "south", "east", "west"}
    assert "generated 200 orders" in outcome.log
    # Parameters change the result; the same parameters give the same result.
    more = run(runner, "data_loading", {"data_loading": {"n_rows": 500}})
    assert more.results is not None
    assert more.results["orders_summary"]["rows_generated"] == 500
    assert run(runner, "data_loading").results == outcome.results
    # Nothing (session store, logs) is written into the project: Lambda's disk is read-only.
    assert _files(project) == before
    # The cleaned orders were saved as a CSV, committed to the data root.
    assert [o["name"] for o in outcome.outputs] == ["clean_orders"]
    committed = project.parent / "data_root" / "data" / "02_intermediate" / "clean_orders.csv"
    assert committed.read_text().startswith("order_id,region,quantity,unit_price,day,revenue")


@pytest.mark.parametrize("pipeline", ["hello", "feature_engineering", "reporting", "__default__"])
def test_every_example_pipeline_completes_with_results(
    example: tuple[KedroRunner, Path], pipeline: str
) -> None:
    runner, _ = example
    runner.isolation = "inline"
    try:
        outcome = run(runner, pipeline)
    finally:
        runner.isolation = "fork"
    assert outcome.status == "completed", outcome.error_message
    assert outcome.results
    if pipeline == "feature_engineering":
        table = outcome.results["region_features"]
        assert table["type"] == "DataFrame" and table["shape"] == [4, 4]
        (model,) = outcome.outputs  # a versioned pickle, a version of this job's own
        assert model["name"] == "revenue_model" and model["version"]


def test_the_example_manifest_names_its_parameters(example: tuple[KedroRunner, Path]) -> None:
    pipelines = example[0].manifest()["pipelines"]
    assert set(pipelines) == {
        "__default__", "data_loading", "feature_engineering", "reporting", "hello"
    }  # fmt: skip
    assert pipelines["data_loading"]["parameters"] == ["data_loading"]
    assert pipelines["hello"]["parameters"] == ["hello.x"]
    assert pipelines["hello"]["outputs"] == ["doubled"]


def test_a_project_without_pyproject_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = write_runner_project(tmp_path / "baked", "baked_project")
    (project / "pyproject.toml").unlink()
    monkeypatch.delenv("KEDRO_PACKAGE_NAME", raising=False)
    runner = KedroRunner(project, isolation="inline")  # the package is found under src/
    assert runner.package_name == "baked_project"
    assert run(runner, "two_nodes", {"x": 4}).results == {"doubled": 8}


def test_a_project_without_pyproject_toml_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_runner_project(tmp_path / "named", "named_project")
    (project / "pyproject.toml").unlink()
    (project / "src" / "decoy").mkdir()
    (project / "src" / "decoy" / "pipeline_registry.py").write_text("")
    monkeypatch.setenv("KEDRO_PACKAGE_NAME", "named_project")
    runner = KedroRunner(project, isolation="fork")
    assert run(runner, "two_nodes", {"x": 1}).results == {"doubled": 2}


def test_runners_of_two_projects_take_turns(
    runner: KedroRunner, example: tuple[KedroRunner, Path]
) -> None:
    assert run(runner, "two_nodes", {"x": 2}).results == {"doubled": 4}
    assert run(example[0], "hello").results == {"doubled": 42}
    assert run(runner, "two_nodes", {"x": 3}).results == {"doubled": 6}


def test_a_missing_project_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="KEDRO_PROJECT_PATH"):
        KedroRunner(tmp_path / "nowhere")


def test_the_project_path_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEDRO_PROJECT_PATH", str(tmp_path))
    assert project_path_from_env() == tmp_path.resolve()
    monkeypatch.delenv("KEDRO_PROJECT_PATH")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    assert project_path_from_env() == EXAMPLE  # no baked project there
    (tmp_path / "project").mkdir()
    assert project_path_from_env() == tmp_path / "project"
