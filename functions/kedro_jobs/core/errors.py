"""Domain errors. The API maps them to HTTP in one place (api/errors.py)."""

from __future__ import annotations

from kedro_jobs.names import unknown_pipeline_message


class JobsError(Exception):
    """Base of every error the core raises on purpose."""


class JobNotFound(JobsError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id!r} not found")
        self.job_id = job_id


class JobAlreadyExists(JobsError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id!r} already exists")
        self.job_id = job_id


class InvalidTransition(JobsError):
    """The job is not in a state that allows the requested change."""

    def __init__(self, job_id: str, status: str, action: str) -> None:
        super().__init__(f"Job {job_id!r} is {status}; it cannot be {action}")
        self.job_id = job_id
        self.status = status


class InvalidCursor(JobsError):
    def __init__(self) -> None:
        super().__init__("cursor is not valid for this listing; pass next_cursor unchanged")


class UnknownPipeline(JobsError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(unknown_pipeline_message(name, known))
        self.name = name
        self.known = known


class NotOffered(JobsError):
    """The request asks for something this deployment does not offer (a 422)."""


class DependencyUnavailable(JobsError):
    """DynamoDB, SQS or S3 throttled, failed with a 5xx or timed out: retryable by the caller
    (core/aws.py decides which)."""

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency} unavailable: {reason}")
        self.dependency = dependency
        self.reason = reason


class DependencyRefused(DependencyUnavailable):
    """DynamoDB, SQS or S3 refused the request (a 4xx: AccessDenied, a validation error, ...):
    asking again meets the same answer, so it is not retried. A subclass, so that best-effort
    writes (progress, a heartbeat, a log) still go on past it as past any failure of theirs."""

    def __init__(self, dependency: str, reason: str) -> None:
        JobsError.__init__(self, f"{dependency} refused the request: {reason}")
        self.dependency = dependency
        self.reason = reason
