"""Settings from environment variables, in one typed model validated at cold start."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob the functions read. Names are the environment variables, case-insensitive."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    jobs_table_name: str = "kedro-jobs-jobs"
    idempotency_table_name: str = "kedro-jobs-idempotency"
    jobs_queue_url: str = ""
    artifacts_bucket: str = "kedro-jobs-artifacts"

    max_attempts: int = Field(3, ge=1, le=20)
    # A lease is how long a claim stays live; the consumer sets it from the Lambda's own
    # remaining time, this is the fallback when that is unknown (local pollers).
    lease_seconds: int = Field(900, ge=5)
    # A running job's claim lasts this long; its consumer extends it every third of it
    # (heartbeat), so a consumer that dies is noticed within it (the sweeper then re-sends).
    job_lease_seconds: int = Field(60, ge=10)
    # The sweeper sends again the message of a job pending (never claimed) this long, or of
    # a running job whose lease expired and whose re-sent message was not taken this long;
    # a pending job re-sent MAX_ATTEMPTS times is failed.
    sweep_after_seconds: int = Field(180, ge=30)
    # Where the consumer puts a message that can never succeed, with its reason (empty: it
    # is reported failed instead, and SQS's redrive moves it after maxReceiveCount).
    jobs_dlq_url: str = ""
    # Stop a job this long before the Lambda's deadline so the failure can still be written.
    timeout_margin_seconds: float = Field(10.0, ge=0.5)
    results_inline_max_bytes: int = Field(32_768, ge=1024, le=300_000)
    idempotency_ttl_seconds: int = Field(86_400, ge=60)
    job_ttl_days: int = Field(90, ge=0)  # 0 keeps jobs forever
    isolation: str = Field("fork", pattern="^(fork|inline)$", validation_alias="RUN_ISOLATION")
    # Where committed dataset files live: a local folder or s3://bucket/prefix, mirroring the
    # project folder (empty: the project folder itself, as `kedro run` writes). A job writes
    # to a private staging folder under staging_dir and commits on success.
    jobs_data_root: str = ""
    staging_dir: str = ""  # empty: the system's temporary folder (/tmp on Lambda)
    # How long a presigned download URL of a job's output works (SigV4 allows up to 7 days).
    output_url_seconds: int = Field(3600, ge=1, le=604_800)
    # This API's own address (scheme://host[:port][/stage]), for download links of outputs
    # in a local data root and of folder outputs; empty: the links are relative to the API
    # (/api/v1/...). Never taken from a request's Host header, which the client chooses.
    api_base_url: str = Field("", pattern=r"^(https?://[^/?#\s]+(/[^?#\s]*)?)?$")
    # An authorizer stands in front of the API (the template sets it from JwtIssuer): a request
    # it let through must then carry an identity; none is 401/403, never "anonymous".
    auth_required: bool = False
    # A job's whole run, across all its segments (Lambda invocations), may take at most this
    # long; a job may ask for less (``max_job_seconds`` on submit), never more.
    max_job_seconds: int = Field(21_600, ge=60)
    # Before a node no earlier run has timed (and none of this run), a segment goes on only if
    # at least this much of the invocation is left; else it checkpoints and continues.
    continue_margin_seconds: float = Field(30.0, ge=0)
    # ECS Fargate, for jobs submitted with "compute": "fargate" (empty cluster: not offered).
    fargate_cluster: str = ""
    fargate_task_definition: str = ""
    fargate_container_name: str = "consumer"
    fargate_subnets: str = ""  # comma-separated subnet ids
    fargate_security_groups: str = ""  # comma-separated security group ids
    fargate_assign_public_ip: bool = False
    # A Fargate task's job may run this long (the task definition's own limit, 8 h by default).
    fargate_task_seconds: int = Field(28_800, ge=60)
    # EventBridge bus that job state changes are published on (empty: none are published).
    event_bus_name: str = ""
    # EventBridge Scheduler, for schedules (empty group: schedules are not offered): the
    # schedule group the API keeps them in, the role Scheduler sends their messages with, and
    # the queue it sends them to (its ARN).
    schedule_group_name: str = ""
    scheduler_role_arn: str = ""
    jobs_queue_arn: str = ""
    # The HMAC key (the template's Secrets Manager secret) that signs job checkpoints (a
    # checkpoint is read only if signed with it; empty: each runner signs with a key of its
    # own, so another container cannot resume its checkpoints) and seals the owner of a
    # schedule's messages (core/messages.py; empty: no seal, so a schedule owned by a
    # reserved name cannot fire).
    signing_key: SecretStr = SecretStr("")
    # The Step Functions state machine that runs a job's independent groups of nodes on
    # different workers (docs/fan-out.md; empty: every job runs on one worker).
    fan_out_state_machine_arn: str = ""
    # A job fans out only where two groups that could run at once each took at least this
    # long in the pipeline's last run (a node never timed counts 0 s: a pipeline's first run
    # is on one worker, and times its nodes). 0: whenever the pipeline's shape allows.
    fan_out_min_group_seconds: float = Field(5.0, ge=0)
    # Consumer heartbeats (core/heartbeats.py): a writer refreshes each one this often; one
    # not refreshed for three beats has no writer left, and an idle consumer that has not
    # polled the queue for as long is hung, not alive (so `/health` notices within it).
    consumer_heartbeat_seconds: float = Field(5.0, ge=0.5, le=300)
    log_level: str = "INFO"
    # X-Ray, by Powertools' rule: on in Lambda (where its daemon listens) unless disabled;
    # `sam local` has no daemon. The template turns it on with its Tracing parameter.
    powertools_trace_disabled: bool = False
    lambda_task_root: str = ""
    aws_sam_local: bool = False

    @property
    def tracing(self) -> bool:
        return bool(self.lambda_task_root) and not (
            self.aws_sam_local or self.powertools_trace_disabled
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
