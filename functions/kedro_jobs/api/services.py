"""What the routes need, built once per container on first use (never at import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from fastapi import Request

from kedro_jobs.api.idempotency import SubmitOnce
from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.manifest import ManifestReader
from kedro_jobs.core.queue import JobQueue
from kedro_jobs.core.scheduler import Scheduler
from kedro_jobs.core.settings import Settings, get_settings
from kedro_jobs.core.store.roles.api import ApiJobs


@dataclass
class Services:
    settings: Settings = field(default_factory=get_settings)

    @cached_property
    def store(self) -> ApiJobs:
        return ApiJobs.from_settings(self.settings)

    @cached_property
    def queue(self) -> JobQueue:
        return JobQueue(self.settings.jobs_queue_url)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        return ArtifactStore(self.settings.artifacts_bucket)

    @cached_property
    def manifest(self) -> ManifestReader:
        return ManifestReader(self.artifacts)

    @cached_property
    def scheduler(self) -> Scheduler:
        s = self.settings
        return Scheduler(s.schedule_group_name, s.scheduler_role_arn, s.jobs_queue_arn)

    @cached_property
    def submit_once(self) -> SubmitOnce:
        return SubmitOnce(self.settings)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
