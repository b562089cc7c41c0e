"""The project's configuration a job's run reads (catalog, parameters, credentials), read once
per env and runtime parameters in the warm consumer, before it forks, and given to every run
of that shape: without it each forked child globbed and parsed the conf folder again, three
times a run (~10 ms of a trivial job's CPU here).

Only Kedro's public API: the config is read with the project's own config loader class and
arguments (as the service session makes it, runtime parameters not allowed to choose a
dataset's type), and given to a run by its ``after_context_created`` hook, on the context's
config loader, whose explicitly set keys Kedro reads instead of the files.

Read per run, as before, when sharing could change what a run sees:
- a conf file is added, removed or changed (its size, modification time or inode) since it
  was read;
- the loader is not Kedro's ``OmegaConfigLoader`` or has custom resolvers, or a conf file
  interpolates a resolver whose value may change from run to run (anything but
  ``runtime_params``, ``globals`` and OmegaConf's ``oc.*``);
- the conf source is not a local folder;
- reading it failed (the run then meets the same error, and fails saying it).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from kedro_jobs.runner.hooks import JobHooks

logger = logging.getLogger(__name__)

# The keys a run's context reads from its config loader (KedroContext: the catalog, its
# credentials, the parameters).
KEYS = ("catalog", "credentials", "parameters")
# Resolvers whose value is the same for every run of one shape (env, runtime parameters).
STEADY_RESOLVERS = frozenset({"runtime_params", "globals"})
_INTERPOLATION = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*:")
# Shapes kept at once: each is a few dicts; jobs with ever-new parameters replace the oldest.
MAX_SHAPES = 16

Fingerprint = tuple[tuple[str, int, int, int], ...]
_SHARED: OrderedDict[tuple[str, str | None, str], tuple[Fingerprint, dict[str, Any]]] = (
    OrderedDict()
)
# How often what is kept here changed: a child forked before a change lacks it (forked.py).
_changes = 0


def changes() -> int:
    return _changes


def shared_config(
    project_path: Path, env: str | None, runtime_params: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The config every run of this shape reads (key -> value), read now if not read yet or
    changed since; None when it must be read by each run (see the module's docstring)."""
    global _changes
    conf = _local_conf_source(project_path)
    if conf is None:
        return None
    try:
        shape = (str(conf), env, json.dumps(runtime_params or {}, sort_keys=True, default=str))
    except (TypeError, ValueError):
        return None
    fingerprint = _fingerprint(conf)
    kept = _SHARED.get(shape)
    if kept is not None and kept[0] == fingerprint:
        _SHARED.move_to_end(shape)
        return kept[1]
    _changes += 1
    _SHARED.pop(shape, None)
    values = _read(conf, env, runtime_params, fingerprint)
    if values is not None:
        _SHARED[shape] = (fingerprint, values)
        while len(_SHARED) > MAX_SHAPES:
            _SHARED.popitem(last=False)
    return values


class SharedConfigHook(JobHooks):
    """Gives one run's config loader the shared config: Kedro reads a key that was set
    explicitly instead of the files. Each run gets its own copy."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        for key, value in self.config.items():
            context.config_loader[key] = copy.deepcopy(value)


def _local_conf_source(project_path: Path) -> Path | None:
    from kedro.framework.project import settings

    source = str(settings.CONF_SOURCE)
    if "://" in source:
        return None
    conf = project_path / source
    return conf if conf.is_dir() else None


def _fingerprint(conf: Path) -> Fingerprint:
    """Every file under the conf folder, with its size, modification time and inode (an
    editor that saves by replacing the file gives it a new one)."""
    found: list[tuple[str, int, int, int]] = []
    for folder, _, files in os.walk(conf):
        for name in files:
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            found.append((path, stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return tuple(sorted(found))


_STEADY: dict[Fingerprint, bool] = {}  # of the conf folder as last seen (jobs of new shapes)


def _steady(fingerprint: Fingerprint) -> bool:
    """No conf file interpolates a resolver that may give another value at the next run."""
    if fingerprint not in _STEADY:
        _STEADY.clear()
        _STEADY[fingerprint] = _scan(fingerprint)
    return _STEADY[fingerprint]


def _scan(fingerprint: Fingerprint) -> bool:
    for path, *_ in fingerprint:
        if not path.endswith((".yml", ".yaml", ".json")):
            continue
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            return False
        for name in _INTERPOLATION.findall(text):
            if name not in STEADY_RESOLVERS and not name.startswith("oc."):
                return False
    return True


def _read(
    conf: Path, env: str | None, runtime_params: dict[str, Any] | None, fingerprint: Fingerprint
) -> dict[str, Any] | None:
    from kedro.config import MissingConfigException, OmegaConfigLoader
    from kedro.framework.project import settings

    loader_class = settings.CONFIG_LOADER_CLASS
    arguments = dict(settings.CONFIG_LOADER_ARGS)
    if not issubclass(loader_class, OmegaConfigLoader) or arguments.get("custom_resolvers"):
        return None
    if not _steady(fingerprint):
        return None
    # As the service session makes a run's loader: its callers are not trusted.
    arguments["restrict_runtime_params_type_selection"] = True
    try:
        loader = loader_class(
            conf_source=str(conf), env=env, runtime_params=runtime_params, **arguments
        )
        values: dict[str, Any] = {}
        for key in KEYS:
            try:
                values[key] = loader[key]
            except MissingConfigException:
                if key != "credentials":
                    return None
                values[key] = {}  # what the context reads when there are none
    except Exception:  # the run reads it itself, and fails saying why
        logger.debug("config not shared for env %r", env, exc_info=True)
        return None
    return values
