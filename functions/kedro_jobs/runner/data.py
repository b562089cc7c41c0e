"""Where a job's datasets are read and written: each job writes to a private staging folder,
reads what earlier jobs committed, and commits its own outputs only when it completes.

The data root mirrors the project folder: a dataset at ``data/02_intermediate/x.parquet`` of
the project is committed at ``<root>/data/02_intermediate/x.parquet``, where the root is a
local folder or an ``s3://bucket/prefix`` URI (the project folder itself when none is set, so
outputs land where `kedro run` puts them). A dataset with a path outside the project (an
absolute path, another bucket) is committed where its path says.

- Every file dataset the run writes (a ``filepath`` or ``path`` in its config; local or
  remote, versioned or not) is rebuilt to save under the job's staging folder, on local disk
  (Lambda's /tmp), so a concurrent job never sees a half-written or foreign file. Datasets
  that share a file (transcoding) share the staged copy.
- A dataset the run only reads comes from the data root, or from the project's own files (raw
  inputs shipped with it) when the root has no such file.
- Versioned datasets save with a version unique to the job, so two jobs started in the same
  millisecond never write the same version, and a job loads the version it saved itself.
- On completion each staged file is published whole (a rename, or one S3 PUT, never a file
  written in place); on failure, timeout or cancel the staging folder is removed unpublished.
- A dataset that saves a folder (many files under one path) is committed as a whole folder:
  afterwards it holds exactly this run's files (folders.py), unless the dataset itself
  appends (a PartitionedDataset without ``overwrite``, an IncrementalDataset, a ``mode:
  append`` save): then the run's files are added to what is there, as `kedro run` does.
- A path that leaves its root (``..`` in a path built from runtime parameters) is refused.

Datasets without a path (memory, SQL, APIs) are left alone.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from kedro_jobs.runner.folders import publish_file, publish_folder
from kedro_jobs.runner.spark import check_spark_read

_PATH_KEYS = ("filepath", "path")
_LOCAL_PROTOCOLS = ("", "file", "local")


@dataclass(frozen=True)
class StagedOutput:
    """One dataset the run saved: where it was staged and where it is committed."""

    name: str
    type: str
    staged: str  # a local path (file or folder)
    target: str  # the committed location: a local path or a URI
    version: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    # A folder saved by a dataset that replaces what it saves (not one that appends): it is
    # committed whole, so the committed folder holds exactly this run's files.
    whole: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _protocol(path: str) -> str:
    return path.split("://", 1)[0] if "://" in path else ""


def _strip_protocol(path: str) -> str:
    return path.split("://", 1)[1] if "://" in path else path


def _join(root: str, relative: PurePosixPath) -> str:
    return f"{root.rstrip('/')}/{relative.as_posix()}"


class UnsafePath(ValueError):
    """A dataset's path leaves the folder it must stay in (the data root, the staging)."""


def _normal(path: str, root: str) -> str:
    """``path`` with ``.`` and ``..`` resolved; refused if a ``..`` climbs above ``root``."""
    normal = posixpath.normpath(path) if path else path
    if normal == ".." or normal.startswith("../") or "/../" in f"/{normal}/":
        raise UnsafePath(f"its path {path!r} resolves outside {root}")
    return normal


def _refused(name: str, error: UnsafePath) -> UnsafePath:
    return UnsafePath(
        f"Dataset {name!r} was refused before the run: {error} (a path built from runtime "
        "parameters may not use '..' to leave its folder)"
    )


def _appends(dataset: Any, config: dict[str, Any]) -> bool:
    """Whether the dataset adds to the folder it saves rather than replacing it, as Kedro
    defines it: a PartitionedDataset without ``overwrite`` (an IncrementalDataset always),
    any dataset saving with ``mode: append``; a versioned one adds a new version."""
    if config.get("versioned"):
        return True
    save_args = config.get("save_args")
    if isinstance(save_args, dict) and str(save_args.get("mode", "")).lower() == "append":
        return True
    try:
        from kedro_datasets.partitions import PartitionedDataset
    except ImportError:  # pragma: no cover - kedro-datasets is a dependency of the runner
        return False
    if isinstance(dataset, PartitionedDataset):
        return not bool(getattr(dataset, "_overwrite", False))
    return False


def in_version(item: StagedOutput, version: str) -> StagedOutput:
    """A staged file of another job (a rerun from failure goes on from what a stopped job
    kept) moved to this job's save ``version``, so the job commits one version of its own,
    as an uninterrupted run would. One of this job's is returned as it is."""
    old = item.version
    if old is None or old == version:
        return item
    saved_as = Path(item.staged) / old
    if saved_as.exists():
        saved_as.rename(Path(item.staged) / version)
    return replace(item, version=version)


def unique_version(job_id: str) -> str:
    """Kedro's timestamp version, made unique to the job: versions still sort by time."""
    from kedro.io.core import generate_timestamp

    return f"{generate_timestamp()}-{job_id[:12]}"


def _storage_options(config: dict[str, Any]) -> dict[str, Any]:
    credentials = config.get("credentials")
    fs_args = config.get("fs_args")
    options = dict(credentials) if isinstance(credentials, dict) else {}
    if isinstance(fs_args, dict):
        options.update({k: v for k, v in fs_args.items() if not k.startswith("open_args")})
    return options


@contextlib.contextmanager
def _quiet_catalog() -> Iterator[None]:
    """The catalog warns "Replacing dataset" for each rebuilt dataset: not the user's news."""
    catalog_logger = logging.getLogger("kedro.io.data_catalog")
    level = catalog_logger.level
    catalog_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        catalog_logger.setLevel(level)


class DataPlan:
    """One job's view of the data: built before the run, applied to its catalog by a hook,
    committed or discarded after it."""

    def __init__(
        self, project_path: Path, data_root: str, staging: Path, save_version: str
    ) -> None:
        self.project_path = project_path
        self.data_root = data_root or str(project_path)
        self.staging = staging
        self.save_version = save_version
        self.staged: list[StagedOutput] = []
        # Files earlier segments of the job staged (restored from its checkpoint): read from
        # here by the remaining nodes, committed with this run's own when the job completes.
        self.carried: list[StagedOutput] = []
        self._lock_wait: float | None = None

    @classmethod
    def for_job(
        cls,
        project_path: Path,
        data_root: str,
        staging_root: Path,
        job_id: str,
        save_version: str | None = None,
    ) -> DataPlan:
        """``save_version``: an earlier segment's, so a job saves one version throughout."""
        # A unique folder: a job taken over by another consumer on this machine (local runs
        # share /tmp) must not share its staging with the first.
        staging = staging_root / f"{job_id}-{uuid.uuid4().hex[:8]}"
        return cls(project_path, data_root, staging, save_version or unique_version(job_id))

    # -- before the run: point every file dataset at its place ---------------------------

    def apply(self, pipeline: Any, catalog: Any, load_versions: dict[str, str]) -> None:
        written: dict[str, str] = {}  # committed target -> staged path
        carried = {item.target: item.staged for item in self.carried}
        outputs = set(pipeline.all_outputs())
        for name in sorted(outputs):
            found = self._file_config(catalog, name)
            if found is None:
                continue
            key, config = found
            target, staged = self._placed(name, config[key])
            staged = written.setdefault(target, staged)
            dataset = self._rebuild(catalog, name, config, key, staged, load_versions)
            kind = type(dataset)
            self.staged.append(
                StagedOutput(
                    name=name,
                    type=f"{kind.__module__}.{kind.__qualname__}",
                    staged=staged,
                    target=target,
                    version=self.save_version if config.get("versioned") else None,
                    storage_options=_storage_options(config),
                    whole=not _appends(dataset, config),
                )
            )
        for name in sorted(set(pipeline.datasets()) - outputs):
            found = self._file_config(catalog, name)
            if found is None:
                continue
            key, config = found
            target = self._checked(name, config[key])
            if target in written:  # another name (transcoding) for a file this run writes
                self._rebuild(catalog, name, config, key, written[target], load_versions)
            elif target in carried:  # saved by an earlier segment: its staged copy
                self._rebuild(catalog, name, config, key, carried[target], load_versions)
            elif target != config[key] and _exists(target, _storage_options(config)):
                check_spark_read(name, config, target)
                self._rebuild(catalog, name, config, key, target, load_versions, keep=True)
            else:  # the project's own file (a raw input shipped with it), as configured
                check_spark_read(name, config, config[key])

    def _placed(self, name: str, path: str) -> tuple[str, str]:
        """Where a dataset the run writes is committed, and staged; refused (UnsafePath)
        if either leaves its root."""
        target = self._checked(name, path)
        try:
            return target, self._staged_path(target)
        except UnsafePath as error:
            raise _refused(name, error) from None

    def _checked(self, name: str, path: str) -> str:
        try:
            return self.target(path)
        except UnsafePath as error:
            raise _refused(name, error) from None

    def target(self, path: str) -> str:
        """Where a dataset at ``path`` (as Kedro resolved it) is committed. A path inside the
        project (as written) must stay inside the data root once ``..`` is resolved; a remote
        one must not climb above its bucket: both are refused (UnsafePath) if they do."""
        protocol = _protocol(path)
        if protocol not in _LOCAL_PROTOCOLS:
            bucket, _, key = _strip_protocol(path).partition("/")
            root = f"{protocol}://{bucket}"
            return f"{root}/{_normal(key, root)}" if key else path
        local = Path(_strip_protocol(path))
        try:
            relative = local.relative_to(self.project_path)
        except ValueError:
            # Outside the project: its own place (an absolute path in the catalog).
            return posixpath.normpath(local.as_posix())
        within = _normal(relative.as_posix(), f"the data root {self.data_root}")
        return _join(self.data_root, PurePosixPath(within))

    def _staged_path(self, target: str) -> str:
        protocol = _protocol(target) or "file"
        relative = _normal(_strip_protocol(target).lstrip("/"), "the job's staging folder")
        return str(self.staging / protocol / relative)

    @staticmethod
    def _file_config(catalog: Any, name: str) -> tuple[str, dict[str, Any]] | None:
        if name.startswith("params:") or name == "parameters":
            return None
        config = catalog.config_resolver.resolve_pattern(name)
        if not isinstance(config, dict):
            return None
        for key in _PATH_KEYS:
            if isinstance(config.get(key), str):
                return key, config
        return None

    def _rebuild(
        self,
        catalog: Any,
        name: str,
        config: dict[str, Any],
        key: str,
        path: str,
        load_versions: dict[str, str],
        *,
        keep: bool = False,
    ) -> Any:
        from kedro.io import AbstractDataset

        rebuilt = {k: v for k, v in config.items() if k != "validation"}
        rebuilt[key] = path
        if not keep and _protocol(path) in _LOCAL_PROTOCOLS:
            rebuilt.pop("credentials", None)  # staged on local disk: no remote credentials
        dataset = AbstractDataset.from_config(
            name, rebuilt, load_versions.get(name), self.save_version
        )
        with _quiet_catalog():
            catalog[name] = dataset
        return dataset

    # -- after the run ---------------------------------------------------------------------

    def commit(
        self, staged: list[StagedOutput], *, lock_wait: float | None = None
    ) -> list[dict[str, Any]]:
        """Publish what the run saved; returns the outputs (name, type, uri, version, size,
        files). ``lock_wait``: how long a folder's commit may wait for another job's."""
        self._lock_wait = lock_wait
        outputs: list[dict[str, Any]] = []
        sizes: dict[str, int] = {}
        counts: dict[str, int | None] = {}
        for item in staged:
            source = Path(item.staged)
            if item.staged not in sizes:
                if not source.exists():
                    continue  # declared but never saved to its path
                counts[item.staged] = _count(source, item.version)
                sizes[item.staged] = self._publish(item)
            uri = item.target
            if item.version:
                uri = f"{item.target}/{item.version}/{PurePosixPath(item.target).name}"
            output = {
                "name": item.name,
                "type": item.type,
                "uri": uri,
                "version": item.version,
                "size": sizes[item.staged],
            }
            if counts[item.staged] is not None:
                output["files"] = counts[item.staged]
            outputs.append(output)
        return outputs

    def _publish(self, item: StagedOutput) -> int:
        """Publish one staged file or folder; returns the bytes published."""
        source = Path(item.staged)
        if source.is_file():
            return publish_file(source, item.target, item.storage_options)
        return publish_folder(
            source,
            item.target,
            item.storage_options,
            whole=item.whole,
            locks=f"{self.data_root.rstrip('/')}/.kedro-jobs/locks",
            lock_wait=self._lock_wait,
        )

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _count(source: Path, version: str | None) -> int | None:
    """Files of a folder output (None: one file). A versioned dataset's staged folder holds
    its version's folder, whose one entry is the file or the folder it saved."""
    path = source / version / source.name if version else source
    return sum(1 for p in path.rglob("*") if p.is_file()) if path.is_dir() else None


def _exists(target: str, storage_options: dict[str, Any]) -> bool:
    import fsspec

    fs, path = fsspec.core.url_to_fs(target, **storage_options)
    return bool(fs.exists(path))
