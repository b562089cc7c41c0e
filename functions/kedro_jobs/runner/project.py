"""Finding and bootstrapping the Kedro project, once per container."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

PROJECT_PATH_VAR = "KEDRO_PROJECT_PATH"
PACKAGE_NAME_VAR = "KEDRO_PACKAGE_NAME"


def _baked_project() -> Path:
    return Path(os.environ.get("LAMBDA_TASK_ROOT", "/var/task")) / "project"


def _bundled_example() -> Path:
    """local/example_project of the repository this package was loaded from."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "local" / "example_project"
        if candidate.is_dir():
            return candidate
    return Path.cwd() / "local" / "example_project"  # absent; the runner then says so


def project_path_from_env() -> Path:
    """KEDRO_PROJECT_PATH, else the project baked into the image, else the bundled example."""
    configured = os.environ.get(PROJECT_PATH_VAR)
    if configured:
        return Path(configured).resolve()
    baked = _baked_project()
    return baked if baked.is_dir() else _bundled_example()


def _package_name_without_metadata(project_path: Path) -> str:
    """An image may carry the project without pyproject.toml: KEDRO_PACKAGE_NAME names the
    package, else the only package under src/ that has a pipeline registry."""
    configured = os.environ.get(PACKAGE_NAME_VAR)
    if configured:
        return configured
    found = sorted(p.parent.name for p in (project_path / "src").glob("*/pipeline_registry.py"))
    if len(found) == 1:
        return found[0]
    raise ValueError(
        f"{project_path} has no pyproject.toml and {PACKAGE_NAME_VAR} is not set; "
        f"packages with a pipeline registry under src/: {found or 'none'}"
    )


def bootstrap(project_path: Path) -> str:
    """Configure Kedro for the project; returns its package name."""
    from kedro.framework.project import configure_project
    from kedro.framework.startup import bootstrap_project

    if not (project_path / "conf").is_dir():
        raise FileNotFoundError(
            f"No Kedro project at {project_path} (no conf/): set {PROJECT_PATH_VAR}"
        )
    if (project_path / "pyproject.toml").is_file():
        return str(bootstrap_project(project_path).package_name)
    package_name = _package_name_without_metadata(project_path)
    src = project_path / "src"
    if src.is_dir() and str(src) not in sys.path:
        sys.path.insert(0, str(src))
    configure_project(package_name)
    return package_name


def ensure_configured(package_name: str) -> None:
    """Kedro's project settings are process-wide: if another project was configured since
    (tests, tools), configure this one again (cheap; no re-import)."""
    from kedro.framework import project

    if package_name != project.PACKAGE_NAME:
        project.configure_project(package_name)
        project.pipelines.keys()  # all of them: later runs' requests are subsets (see below)


def speed_up_sessions() -> None:
    """Per-job work a job service need not redo. Jobs run in Kedro's KedroServiceSession
    (session.py): made once per env, it finds the plugins' hooks once, keeps every pipeline
    loaded ("serving mode"), and keeps no session store (no `git` calls); what is left:
    MemoryDataset tries `import ibis` on every save, and a failed import is not cached, so
    each try searches sys.path again. Record it as absent (an `import ibis` still raises
    ImportError) when it is not installed."""
    if "ibis" not in sys.modules and importlib.util.find_spec("ibis") is None:
        sys.modules["ibis"] = None  # type: ignore[assignment]


def warm_up(project_path: Path) -> None:
    """Make the default env's service session, and build a context and catalog, unrun: the
    first one imports and sets up ~0.5 s of Kedro machinery that every forked child would
    otherwise redo."""
    from kedro.runner import SequentialRunner  # noqa: F401 - imported for the children

    from kedro_jobs.runner.session import service_session
    from kedro_jobs.runner.shared_config import shared_config

    try:
        session = service_session(project_path, None)
        shared_config(project_path, session.env, None)  # a job with no parameters reads it
        catalog = session.load_context().catalog
        # A run makes each unnamed dataset from the catalog's default pattern; the first
        # time imports the dataset class (and tries kedro_datasets): do it here.
        catalog.get("__kedro_jobs_warm_up__", fallback_to_runtime_pattern=True)
    except Exception:  # a project whose base config needs runtime params: warm less
        logger.debug("warm-up session failed", exc_info=True)
