"""A job's checkpoint between two invocations: what the remaining nodes need that is not a
committed file, saved at a node boundary and restored by the next segment.

Saved under ``<data root>/.kedro-jobs/checkpoints/<job id>/<segment>/`` (a local folder or
S3, through fsspec as outputs are published): every in-memory dataset a remaining node still
reads (pickled), every file the job has staged so far (they are committed only when the whole
job completes), the in-memory results already produced, and ``manifest.json``, written last,
so a checkpoint without one is incomplete and never read.

Checkpoints are unpickled, so whoever can write under ``.kedro-jobs/`` could otherwise run
code in the consumer. Each one is signed: the manifest holds the SHA-256 of every file of the
checkpoint and carries an HMAC-SHA256 of itself under the deployment's key
(``SIGNING_KEY``). A checkpoint that is unsigned, altered, or signed with another
key is refused before anything of it is unpickled; one that cannot be read fails the job,
saying the checkpoint is unreadable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kedro_jobs.runner.data import DataPlan, StagedOutput, in_version
from kedro_jobs.runner.results import to_json_safe
from kedro_jobs.runner.signed import (
    Hashing,
    Signer,
    canonical,
    fs_of,
    make_dirs,
    read_signed,
    sha256_of,
)

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_FORMAT = 2  # 2: signed, with the SHA-256 of each file


def job_checkpoints(root: str, job_id: str) -> str:
    """The folder holding every checkpoint of one job (``root``: the data root)."""
    return f"{root.rstrip('/')}/.kedro-jobs/checkpoints/{job_id}"


def saved(location: str) -> bool:
    """Whether a complete checkpoint (its manifest, written last) is at ``location``."""
    fs, path = fs_of(location)
    try:
        return bool(fs.exists(f"{path}/{MANIFEST}"))
    except FileNotFoundError:
        return False


def delete(location: str) -> None:
    """Remove a checkpoint (or a job's checkpoints folder); absent is fine."""
    fs, path = fs_of(location)
    try:
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass


def delete_all_but(root: str, job_id: str, keep: set[str]) -> None:
    """Remove a job's checkpoints other than ``keep`` (locations)."""
    folder = job_checkpoints(root, job_id)
    fs, path = fs_of(folder)
    kept = {fs_of(location)[1].rstrip("/") for location in keep}
    try:
        entries = fs.ls(path, detail=False) if fs.exists(path) else []
    except FileNotFoundError:
        return
    for entry in entries:
        if str(entry).rstrip("/") not in kept:
            fs.rm(entry, recursive=True)


class CheckpointError(Exception):
    """A checkpoint could not be saved or read: the job fails (it cannot go on)."""


def left_to_run(nodes: list[Any], completed: list[str]) -> tuple[list[Any], set[str], set[str]]:
    """At a node boundary (a continuation's, or a stopped run's for a rerun from failure):
    the nodes that go on (every node that did not complete, so also what depends on the one
    that failed, in run order), the datasets the completed ones produced, and what the nodes
    that go on read that none of them makes (carried in the checkpoint, or read again from
    the data root; parameters come from the request)."""
    done = set(completed)
    remaining = [n for n in nodes if n.name not in done]
    produced = {ds for n in nodes if n.name in done for ds in n.outputs}
    needed = {
        name
        for name in set().union(*(n.inputs for n in remaining))
        - set().union(*(n.outputs for n in remaining))
        if not name.startswith("params:") and name != "parameters"  # the session's own
    }
    return remaining, produced, needed


@dataclass(frozen=True)
class Manifest:
    job_id: str
    pipeline_name: str
    segment: int
    save_version: str  # every segment saves versioned datasets with this one version
    completed: list[str]  # node names, all segments so far, in the order they ran
    total: int  # nodes of the job's whole (filtered) pipeline
    remaining: list[str]
    memory: dict[str, str]  # dataset name -> its pickle, relative to the checkpoint
    staged: list[dict[str, Any]]  # StagedOutput, ``staged`` relative to the staging folder
    files: list[str]  # every carried file, relative to the staging folder
    results: dict[str, Any]  # JSON-safe in-memory free outputs already produced
    node_durations: dict[str, float]  # seconds, every node run so far
    # SHA-256 of every file of the checkpoint, by its path relative to the checkpoint.
    digests: dict[str, str] = field(default_factory=dict)
    save_seconds: float = 0.0
    format: int = _FORMAT


def completed_nodes(location: str, job_id: str) -> list[str]:
    """The nodes job ``job_id``'s checkpoint at ``location`` holds the outputs of, for display
    only (a rerun's timeline): its signature is not checked here, as nothing of it is
    unpickled or run; the run that goes on from it checks it before reading anything else."""
    fs, path = fs_of(location)
    with fs.open(f"{path}/{MANIFEST}", "rb") as handle:
        raw = json.load(handle).get("manifest") or {}
    if raw.get("job_id") != job_id:
        raise CheckpointError(f"The checkpoint {location} is not job {job_id}'s")
    return [str(name) for name in raw.get("completed") or []]


def read_manifest(location: str, job_id: str, signer: Signer) -> Manifest:
    """The checkpoint's manifest, once its signature is checked (CheckpointError if it is
    unreadable, unsigned, altered or not this job's)."""
    raw = read_signed(
        location,
        MANIFEST,
        "manifest",
        signer,
        error=CheckpointError,
        noun="checkpoint",
        what=f"The checkpoint {location}",
        unreadable="; the job cannot go on from it",
    )
    try:
        if raw.get("format") != _FORMAT:
            raise ValueError(f"unknown checkpoint format {raw.get('format')!r}")
        manifest = Manifest(**raw)
    except Exception as error:
        raise CheckpointError(
            f"The checkpoint {location} is unreadable ({type(error).__name__}: {error})"
        ) from error
    if manifest.job_id != job_id:
        raise CheckpointError(f"The checkpoint {location} is job {manifest.job_id}'s")
    return manifest


@dataclass
class Checkpointer:
    """Saves and restores one job's checkpoints, in the process that holds the catalog."""

    location: str  # where this segment saves its checkpoint
    plan: DataPlan
    signer: Signer
    job_id: str
    pipeline_name: str
    segment: int
    resumed_from: str | None = None  # the checkpoint this segment goes on from
    resumed: Manifest | None = None  # its manifest (read before the run)
    load_seconds: float = 0.0
    save_seconds: float = 0.0

    @property
    def seconds(self) -> float | None:
        """Time spent on checkpoints by this segment (None: none loaded or saved)."""
        spent = self.load_seconds + self.save_seconds
        return spent if self.resumed is not None or self.save_seconds else None

    # -- the next segment ---------------------------------------------------------------

    def restore(self) -> dict[str, Any]:
        """Bring the carried staged files into this run's staging (``plan.carried``) and
        return the saved in-memory values, by dataset name."""
        manifest, location = self.resumed, self.resumed_from
        if manifest is None or location is None:
            return {}
        try:
            return self._restore(manifest, location)
        except CheckpointError:
            raise
        except Exception as error:
            raise CheckpointError(
                f"The checkpoint {location} is unreadable ({type(error).__name__}: {error}); "
                "the job cannot go on from it"
            ) from error

    def _restore(self, manifest: Manifest, location: str) -> dict[str, Any]:
        started = time.monotonic()
        fs, root = fs_of(location)
        staging = self.plan.staging
        for relative in manifest.files:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        if manifest.files:  # one call: s3fs downloads the files concurrently
            fs.get(
                [f"{root}/staged/{relative}" for relative in manifest.files],
                [str(staging / relative) for relative in manifest.files],
            )
        for relative in manifest.files:
            _check(manifest, location, f"staged/{relative}", sha256_of(staging / relative))
        self.plan.carried = [
            self._versioned(StagedOutput(**{**item, "staged": str(staging / item["staged"])}))
            for item in manifest.staged
        ]
        values: dict[str, Any] = {}
        for name, relative in manifest.memory.items():
            data = fs.cat_file(f"{root}/{relative}")
            _check(manifest, location, relative, hashlib.sha256(data).hexdigest())
            # Signed by this deployment's key, and checked above, before it is unpickled.
            values[name] = pickle.loads(data)  # noqa: S301  # nosec B301
        self.load_seconds = time.monotonic() - started
        logger.info(
            "Resumed from %s in %.3f s: %d values, %d files",
            location,
            self.load_seconds,
            len(values),
            len(manifest.files),
        )
        return values

    def _versioned(self, item: StagedOutput) -> StagedOutput:
        """A file of the stopped job a rerun from failure goes on from moves to this job's
        save version (a later segment of the same job keeps it)."""
        return in_version(item, self.plan.save_version)

    # -- this segment stops ---------------------------------------------------------------

    def save(
        self,
        pipeline: Any,
        catalog: Any,
        completed_here: list[str],
        durations: dict[str, float],
    ) -> str:
        """Save what the nodes after ``completed_here`` need; returns the location. A partial
        checkpoint is removed if saving fails."""
        started = time.monotonic()
        try:
            manifest = self._save(pipeline, catalog, completed_here, durations, started)
        except Exception as error:
            delete(self.location)
            raise CheckpointError(
                f"The job needs another invocation, but its checkpoint could not be saved to "
                f"{self.location}: {error!r}"
            ) from error
        logger.info(
            "Checkpoint saved to %s in %.3f s: %d values, %d files",
            self.location,
            manifest.save_seconds,
            len(manifest.memory),
            len(manifest.files),
        )
        self.save_seconds = time.monotonic() - started
        return self.location

    def _save(
        self,
        pipeline: Any,
        catalog: Any,
        completed_here: list[str],
        durations: dict[str, float],
        started: float,
    ) -> Manifest:
        from kedro.io import MemoryDataset

        previous = self.resumed
        remaining, produced, needed = left_to_run(pipeline.nodes, completed_here)
        fs, root = fs_of(self.location)
        if fs.exists(root):  # left by an attempt of this segment that did not finish
            fs.rm(root, recursive=True)
        make_dirs(fs, root)
        memory: dict[str, str] = {}
        digests: dict[str, str] = {}
        for index, name in enumerate(sorted(needed)):
            dataset = catalog.get(name)
            if isinstance(dataset, MemoryDataset) and dataset.exists():
                relative = f"memory/{index}.pkl"
                make_dirs(fs, f"{root}/memory")
                with fs.open(f"{root}/{relative}", "wb") as handle:
                    hashing = Hashing(handle)
                    # The value as held, not load()'s copy: a big table is not copied again.
                    pickle.dump(dataset._data, hashing, protocol=pickle.HIGHEST_PROTOCOL)
                memory[name] = relative
                digests[relative] = hashing.digest.hexdigest()
        results = dict(previous.results) if previous else {}
        for name in sorted(pipeline.outputs() & produced):
            dataset = catalog.get(name)
            if isinstance(dataset, MemoryDataset) and dataset.exists():
                results[name] = to_json_safe(dataset.load())
        staged, files = self._carry(fs, root, digests, produced)
        manifest = Manifest(
            job_id=self.job_id,
            pipeline_name=self.pipeline_name,
            segment=self.segment,
            save_version=self.plan.save_version,
            completed=[*(previous.completed if previous else []), *completed_here],
            # A resumed segment's pipeline is the remaining nodes only.
            total=previous.total if previous else len(pipeline.nodes),
            remaining=[n.name for n in remaining],
            memory=memory,
            staged=staged,
            files=files,
            results=results,
            node_durations={**(previous.node_durations if previous else {}), **durations},
            digests=digests,
        )
        manifest = Manifest(**{**asdict(manifest), "save_seconds": time.monotonic() - started})
        raw = asdict(manifest)
        signed = {"manifest": raw, "signature": self.signer.sign(canonical(raw))}
        with fs.open(f"{root}/{MANIFEST}", "w") as handle:
            json.dump(signed, handle)
        return manifest

    def _carry(
        self, fs: Any, root: str, digests: dict[str, str], produced: set[str]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Copy every staged file the completed nodes saved (this segment's, ``produced``,
        and those carried from earlier ones) into the checkpoint, noting each one's SHA-256
        in ``digests``. A file of a node that failed while saving is not carried: the node
        runs again."""
        staging = self.plan.staging
        items: list[dict[str, Any]] = []
        sources: dict[str, Path] = {}
        mine = [item for item in self.plan.staged if item.name in produced]
        for item in [*self.plan.carried, *mine]:
            path = Path(item.staged)
            if not path.exists():
                continue  # a dataset of a remaining node, not saved yet
            relative = path.relative_to(staging).as_posix()
            items.append({**item.to_dict(), "staged": relative})
            found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in found:
                sources[file.relative_to(staging).as_posix()] = file
        for name, source in sources.items():
            digests[f"staged/{name}"] = sha256_of(source)
        if sources:
            names = sorted(sources)
            targets = [f"{root}/staged/{name}" for name in names]
            for target in targets:
                make_dirs(fs, target.rsplit("/", 1)[0])
            # One call: s3fs uploads the files concurrently.
            fs.put([str(sources[name]) for name in names], targets)
        return items, sorted(sources)


def _check(manifest: Manifest, location: str, relative: str, digest: str) -> None:
    if manifest.digests.get(relative) != digest:
        raise CheckpointError(
            f"The checkpoint {location} was altered: {relative} does not match its signed "
            "manifest; refused"
        )
