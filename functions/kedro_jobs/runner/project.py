"""Finding and bootstrapping the Kedro project, once per container."""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

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
    """Per-job work KedroSession redoes that a job service need not; ~15 ms of a ~35 ms job.
    Each change is skipped if Kedro's internals moved (then only speed is lost)."""
    from kedro.framework.session import session as session_module

    # KedroSession.create runs `git rev-parse` and `git status` for its session store: two
    # process spawns a job (from the forked child, too). This service keeps no session store.
    if hasattr(session_module, "_describe_git"):
        session_module._describe_git = _no_git
    # Plugin hooks are found by scanning every installed distribution's entry points, on
    # every session; the installed packages do not change in a container: scan once.
    original = getattr(session_module, "_register_hooks_entry_points", None)
    if original is not None:
        session_module._register_hooks_entry_points = _EntryPointHooks(original)  # type: ignore[attr-defined]
    # MemoryDataset tries `import ibis` on every save; a failed import is not cached, so
    # each try searches sys.path again. Record it as absent (an `import ibis` still raises
    # ImportError) when it is not installed.
    if "ibis" not in sys.modules and importlib.util.find_spec("ibis") is None:
        sys.modules["ibis"] = None  # type: ignore[assignment]
    # session.run asks for just the pipelines it runs (`set_requested`), and a change of
    # request empties the registry, so the next access calls the project's
    # register_pipelines again: in every forked child (its state dies with it), ~5 ms here
    # and far more for a big project. Once every pipeline is loaded, a narrower request is
    # a subset of what is there: keep it.
    from kedro.framework.project import _ProjectPipelines

    set_requested = getattr(_ProjectPipelines, "set_requested", None)
    if set_requested is not None and not hasattr(set_requested, "__wrapped__"):
        _ProjectPipelines.set_requested = _keep_loaded_registry(set_requested)  # type: ignore[method-assign,assignment]


def _no_git(project_path: Path) -> dict[str, Any]:
    return {}


def _keep_loaded_registry(set_requested: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    @functools.wraps(set_requested)
    def keep(registry: Any, pipeline_names: Any) -> None:
        everything = getattr(registry, "_is_data_loaded", False) and (
            getattr(registry, "_requested_pipelines", ()) is None
        )
        if not everything:
            set_requested(registry, pipeline_names)

    return keep


class _EntryPointHooks:
    """Kedro's entry-point hook registration, with the plugins found the first time
    registered again on later sessions' hook managers."""

    def __init__(self, register: Callable[[Any, Iterable[str]], None]) -> None:
        self.register = register
        self.plugins: dict[str, object] | None = None

    def __call__(self, hook_manager: Any, disabled_plugins: Iterable[str]) -> None:
        if self.plugins is None:
            before = set(hook_manager.get_plugins())
            self.register(hook_manager, disabled_plugins)
            self.plugins = {
                hook_manager.get_name(plugin): plugin
                for plugin in hook_manager.get_plugins()
                if plugin not in before
            }
            return
        for name, plugin in self.plugins.items():
            if not hook_manager.is_registered(plugin):
                hook_manager.register(plugin, name=name)


def warm_up(project_path: Path) -> None:
    """Build one session's context and catalog, unrun: the first one imports and sets up
    ~0.5 s of Kedro machinery that every forked child would otherwise redo."""
    from kedro.framework.session import KedroSession
    from kedro.runner import SequentialRunner  # noqa: F401 - imported for the children

    import kedro_jobs.runner.session  # noqa: F401 - every job imports it (and its hooks)

    try:
        with KedroSession.create(project_path=project_path) as session:
            catalog = session.load_context().catalog  # type: ignore[attr-defined]
            # A run makes each unnamed dataset from the catalog's default pattern; the
            # first time imports the dataset class (and tries kedro_datasets): do it here.
            catalog.get("__kedro_jobs_warm_up__", fallback_to_runtime_pattern=True)
    except Exception:  # a project whose base config needs runtime params: warm less
        logger.debug("warm-up session failed", exc_info=True)
