"""One group of a fanned-out job, run on its own worker, and the job's commit once every
group has run.

A group runs only its nodes, in a Kedro session like any job's. What later groups read is
handed over through the job's staging on the data root (a folder, or S3), never through one
worker's memory: under ``<root>/.kedro-jobs/groups/<job id>/<group id>/`` the group leaves
the in-memory values other groups read (pickled), the files it staged, its in-memory results
and ``handover.json``, written last (a handover without one is incomplete and never read).
A group reads the handovers of the groups it depends on. Nothing reaches the data root's
committed files until ``commit``, which publishes every group's staged files once; ``discard``
removes the job's handovers (a failed or cancelled job commits nothing and leaves none).

Handovers are unpickled, so they are signed as checkpoints are (checkpoint.py, one signer
under the deployment's ``SIGNING_KEY``): ``handover.json`` holds the SHA-256 of every file
of the handover, the job and group it belongs to, and an HMAC of itself. One that is unsigned,
altered, signed with another key or another job's or group's is refused before anything of
it is unpickled or published; the group (or the commit) then fails, saying so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from kedro_jobs.runner.checkpoint import CheckpointError, delete
from kedro_jobs.runner.data import DataPlan, StagedOutput, in_version
from kedro_jobs.runner.hooks import DataPlanHook, JobHooks, ProgressHook, RunEvents
from kedro_jobs.runner.results import to_json_safe
from kedro_jobs.runner.session import Executed, in_directory, job_session, run_arguments
from kedro_jobs.runner.signed import (
    Hashing,
    Signer,
    canonical,
    fs_of,
    make_dirs,
    read_signed,
    sha256_of,
)
from kedro_jobs.runner.types import RunRequest

logger = logging.getLogger(__name__)

HANDOVER = "handover.json"
_FORMAT = 1


class HandoverError(CheckpointError):
    """A handover could not be read, or was refused: the group (or the commit) fails."""


def job_handovers(root: str, job_id: str) -> str:
    return f"{root.rstrip('/')}/.kedro-jobs/groups/{job_id}"


@dataclass(frozen=True)
class GroupWork:
    """What one group's run needs besides the job's request."""

    group_id: str
    nodes: list[str]
    upstream: list[str]  # the group ids whose handovers it reads
    exports: set[str]  # datasets it produces that others read, or that are job results
    results: set[str]  # the job's free outputs (its results)
    root: str  # the data root
    signer: Signer  # the deployment's key: signs this group's handover, checks upstream's
    # A rerun from failure's reused groups: group id to the stopped job that kept its
    # handover (read from there, and accepted as that job's only).
    owners: dict[str, str] = field(default_factory=dict)


class ExportHook(JobHooks):
    """Keeps the values of the datasets other groups will read (as the node returned them),
    for the handover; file datasets are handed over as their staged files instead."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.values: dict[str, Any] = {}

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        self.values.update((k, v) for k, v in outputs.items() if k in self.names)


def _read_handover(location: str, job_id: str, group_id: str, signer: Signer) -> dict[str, Any]:
    """The handover's index, once its signature is checked (HandoverError if it is
    unreadable, unsigned, altered, or not this job's and group's)."""
    raw = read_signed(
        location,
        HANDOVER,
        "handover",
        signer,
        error=HandoverError,
        noun="hand-over",
        what=f"The hand-over of group {group_id} at {location}",
    )
    if (raw.get("job_id"), raw.get("group_id"), raw.get("format")) != (job_id, group_id, _FORMAT):
        raise HandoverError(
            f"The hand-over at {location} is not group {group_id} of job {job_id}: refused"
        )
    return raw


def _check(handover: dict[str, Any], location: str, relative: str, digest: str) -> None:
    if handover["digests"].get(relative) != digest:
        raise HandoverError(
            f"The hand-over at {location} was altered: {relative} does not match its signed "
            "index; refused"
        )


def _kept_at(root: str, job_id: str, group_id: str, owners: dict[str, str]) -> tuple[str, str]:
    """Where group ``group_id``'s handover is, and the job it must be signed as: this job's
    own, or (a rerun from failure's reused group) the stopped job's that kept it."""
    owner = owners.get(group_id, job_id)
    return f"{job_handovers(root, owner)}/{group_id}", owner


def _download(location: str, handover: dict[str, Any], plan: DataPlan) -> list[StagedOutput]:
    """Bring a handover's staged files into the plan's staging, each checked against its
    signed digest; returns them as staged outputs, in the plan's save version (a reused
    group's were saved in the stopped job's: the rerun commits one version, its own)."""
    staging = plan.staging
    fs, root = fs_of(location)
    files = handover["files"]
    for relative in files:
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
    if files:  # one call: s3fs downloads the files concurrently
        fs.get([f"{root}/staged/{r}" for r in files], [str(staging / r) for r in files])
    for relative in files:
        _check(handover, location, f"staged/{relative}", sha256_of(staging / relative))
    return [
        in_version(StagedOutput(**{**item, "staged": str(staging / item["staged"])}),
                   plan.save_version)
        for item in handover["staged"]
    ]  # fmt: skip


def restore(work: GroupWork, job_id: str, plan: DataPlan) -> dict[str, Any]:
    """The upstream groups' files go into this run's staging (read from there, as a resumed
    segment reads its carried files); their values come back by dataset name."""
    values: dict[str, Any] = {}
    for group_id in work.upstream:
        location, owner = _kept_at(work.root, job_id, group_id, work.owners)
        handover = _read_handover(location, owner, group_id, work.signer)
        plan.carried.extend(_download(location, handover, plan))
        fs, root = fs_of(location)
        for name, relative in handover["memory"].items():
            data = fs.cat_file(f"{root}/{relative}")
            _check(handover, location, relative, hashlib.sha256(data).hexdigest())
            # Signed by this deployment's key, and checked above, before it is unpickled.
            values[name] = pickle.loads(data)  # noqa: S301  # nosec B301
    return values


def save(work: GroupWork, job_id: str, plan: DataPlan, exported: dict[str, Any]) -> str:
    """This group's handover: its values others read, its staged files, its results, and
    the signed index of them all (written last)."""
    location = f"{job_handovers(work.root, job_id)}/{work.group_id}"
    fs, root = fs_of(location)
    if fs.exists(root):  # left by an earlier attempt at this group
        fs.rm(root, recursive=True)
    make_dirs(fs, f"{root}/memory")
    memory: dict[str, str] = {}
    digests: dict[str, str] = {}
    results: dict[str, Any] = {}
    for index, (name, value) in enumerate(sorted(exported.items())):
        if name in work.results:
            results[name] = to_json_safe(value)
        relative = f"memory/{index}.pkl"
        with fs.open(f"{root}/{relative}", "wb") as handle:
            hashing = Hashing(handle)
            pickle.dump(value, hashing, protocol=pickle.HIGHEST_PROTOCOL)
        memory[name] = relative
        digests[relative] = hashing.digest.hexdigest()
    staged: list[dict[str, Any]] = []
    sources: dict[str, Path] = {}
    for item in plan.staged:
        path = Path(item.staged)
        if not path.exists():
            continue
        staged.append({**item.to_dict(), "staged": path.relative_to(plan.staging).as_posix()})
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in found:
            sources[file.relative_to(plan.staging).as_posix()] = file
    names = sorted(sources)
    for name in names:
        make_dirs(fs, f"{root}/staged/{name}".rsplit("/", 1)[0])
        digests[f"staged/{name}"] = sha256_of(sources[name])
    if names:  # one call: s3fs uploads the files concurrently
        fs.put([str(sources[n]) for n in names], [f"{root}/staged/{n}" for n in names])
    handover = {
        "format": _FORMAT,
        "job_id": job_id,
        "group_id": work.group_id,
        "memory": memory,
        "staged": staged,
        "files": names,
        "results": results,
        "digests": digests,
    }
    signed = {"handover": handover, "signature": work.signer.sign(canonical(handover))}
    with fs.open(f"{root}/{HANDOVER}", "w") as handle:
        json.dump(signed, handle)
    return location


def execute_group(
    project_path: Path,
    request: RunRequest,
    events: RunEvents,
    *,
    plan: DataPlan,
    work: GroupWork,
) -> Executed:
    """Run one group's nodes in this process (the forked child, or inline) and save its
    handover. Raises the pipeline's error or StopRun."""
    from kedro.runner import SequentialRunner

    session = job_session(project_path, request, plan)
    exports = ExportHook(work.exports)
    with session, in_directory(project_path):
        restored = restore(work, request.job_id, plan)
        session.register(ProgressHook(events), DataPlanHook(plan, restored), exports)
        session.run(
            pipeline_names=[request.pipeline_name],
            runner=SequentialRunner(),
            **run_arguments(request, nodes=work.nodes),
        )
    # The last node's boundary: a worker that lost its group meanwhile (it stalled, another
    # took the group over) or whose job was cancelled stops here, before it writes anything
    # where the new worker's run writes its own hand-over.
    stop = events.stop_reason()
    if stop is not None and stop.status != "continued":
        raise stop
    # File datasets are handed over as their staged files: only the others travel as values.
    files = {item.name for item in plan.staged}
    kept = {name: value for name, value in exports.values.items() if name not in files}
    started = time.monotonic()
    save(work, request.job_id, plan, kept)
    logger.info("Group %s handed over in %.3f s", work.group_id, time.monotonic() - started)
    return Executed({}, [])


def commit(
    root: str, job_id: str, group_ids: list[str], plan: DataPlan, signer: Signer,
    owners: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """Publish every group's staged files once (each handover's signature and files checked
    first; ``owners``: a rerun's reused groups, kept by the job it reruns); returns
    (outputs, results). The handovers are removed afterwards (by ``discard``)."""
    staged: list[StagedOutput] = []
    results: dict[str, Any] = {}
    for group_id in group_ids:
        location, owner = _kept_at(root, job_id, group_id, owners or {})
        handover = _read_handover(location, owner, group_id, signer)
        staged.extend(_download(location, handover, plan))
        results.update(handover["results"])
    return plan.commit(staged), results


def discard(
    root: str, job_id: str, group_id: str | None = None, *, keep: Collection[str] = ()
) -> None:
    """Remove the job's handovers (or one group's), but those of the groups in ``keep`` (a
    stopped job keeps its completed groups' for a rerun from failure)."""
    location = job_handovers(root, job_id)
    if group_id or not keep:
        delete(f"{location}/{group_id}" if group_id else location)
        return
    fs, path = fs_of(location)
    try:
        entries = fs.ls(path, detail=False) if fs.exists(path) else []
    except FileNotFoundError:
        return
    for entry in entries:
        if str(entry).rstrip("/").rpartition("/")[2] not in keep:
            fs.rm(entry, recursive=True)
