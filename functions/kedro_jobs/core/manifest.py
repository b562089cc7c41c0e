"""The Kedro project's pipeline manifest, published to S3 by the consumer, read by the API
(which must not import Kedro to know which pipelines exist)."""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic import BaseModel, Field, computed_field, model_validator

from kedro_jobs.core.artifacts import MANIFEST_KEY, ArtifactStore
from kedro_jobs.core.requests import PIPELINE_NAME_PATTERN


class NodeInfo(BaseModel):
    name: str
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    namespace: str | None = None


class PipelineInfo(BaseModel):
    name: str
    nodes: list[NodeInfo] = Field(default_factory=list)
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    parameters: list[str] = Field(default_factory=list)
    # The project's values of those parameters (a dotted name's top-level key whole).
    parameter_defaults: dict[str, Any] = Field(default_factory=dict)

    # A Kedro project may name a pipeline anything; a job's pipeline_name is checked against
    # PIPELINE_NAME_PATTERN. Such a pipeline is listed, saying why it cannot be submitted.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def submittable(self) -> bool:
        return self.reason is None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reason(self) -> str | None:
        """Why no job can run this pipeline, or None."""
        if re.fullmatch(PIPELINE_NAME_PATTERN, self.name):
            return None
        return (
            f"Its name does not fit a job's pipeline_name ({PIPELINE_NAME_PATTERN}: letters, "
            "digits, '_', '.' and '-', at most 128): rename it in the project's pipeline "
            "registry to submit it"
        )


class Manifest(BaseModel):
    project: str | None = None
    kedro_version: str | None = None
    generated_at: str | None = None
    pipelines: dict[str, PipelineInfo] = Field(default_factory=dict)
    # Set when the consumer could not load the project: why no pipeline is listed.
    load_error: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_pipelines(cls, data: Any) -> Any:
        """Each pipeline's name is its key (the runner's form leaves it out)."""
        if isinstance(data, dict) and isinstance(data.get("pipelines"), dict):
            pipelines = {
                name: {**info, "name": name} if isinstance(info, dict) else info
                for name, info in data["pipelines"].items()
            }
            return {**data, "pipelines": pipelines}
        return data


class ManifestReader:
    """Reads the manifest from S3, keeping it for ``ttl`` seconds per container so a new
    deployment's manifest is picked up without a cold start."""

    def __init__(self, artifacts: ArtifactStore, *, ttl: float = 30.0) -> None:
        self.artifacts = artifacts
        self.ttl = ttl
        self._cached: Manifest | None = None
        self._read_at = float("-inf")

    def get(self) -> Manifest | None:
        now = time.monotonic()
        if now - self._read_at >= self.ttl:
            data = self.artifacts.get_json(MANIFEST_KEY)
            self._cached = Manifest.model_validate(data) if data is not None else None
            self._read_at = now
        return self._cached

    def publish(self, manifest: Manifest) -> str:
        self._cached, self._read_at = manifest, time.monotonic()
        return self.artifacts.put_json(MANIFEST_KEY, manifest.model_dump(mode="json"))
