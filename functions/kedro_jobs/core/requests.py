"""What a client asks for: the fields a client sets (JobSpec, which the request, the queue
message, a schedule and the job record share), run options, the submit request and the queue
message, with the limits every input is checked against (sizes, nesting, names)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)

# Where a job runs: the names of the compute backends (core/compute/'s registry checks them).
from kedro_jobs.names import DEFAULT_COMPUTE, JOB_ID_PATTERN
from kedro_jobs.names import Compute as Compute

PIPELINE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"
MAX_PARAMETERS_BYTES = 65_536
MAX_OPTION_ITEMS = 1_000
# Objects and arrays in `parameters` nest at most this deep (`parameters` itself is level 1).
# Kedro merges runtime params recursively and pydantic serialises at most ~255 levels: a
# deeper value would be accepted here and fail later, in the send or the run.
MAX_NESTING = 32
# A run option `env` names a folder of the project's conf/: no separators, no "." or "..".
ENV_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$"

PipelineName = Annotated[StrictStr, StringConstraints(pattern=PIPELINE_NAME_PATTERN)]


def _check_env(value: str) -> str:
    if not re.fullmatch(ENV_PATTERN, value):
        raise ValueError(
            "env must name a folder of the project's conf/: letters, digits, '_', '-' and '.', "
            "not starting with '.', at most 64 characters"
        )
    return value


# The pattern is checked by _check_env, for a message that says what a valid name is.
EnvName = Annotated[
    StrictStr,
    AfterValidator(_check_env),
    WithJsonSchema({"type": "string", "pattern": ENV_PATTERN}),
]
ShortStr = Annotated[StrictStr, StringConstraints(min_length=1, max_length=1024)]
NameList = Annotated[list[ShortStr], Field(max_length=MAX_OPTION_ITEMS)]

# Job ids derived from a foreign message live in their own UUID namespace, so they are stable
# across redeliveries and never collide with the API's random ids.
JOB_ID_NAMESPACE = uuid.UUID("5b0e4c1e-8a7a-4d3e-9a57-6b1f0d7c2e11")


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def nesting_depth(value: Any) -> int:
    """How deep objects and arrays nest in ``value`` (a scalar is 0, ``{}`` is 1). A loop, not
    recursion: a value too deep for the interpreter's stack is measured like any other."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in children)
    return deepest


def check_nesting(name: str, value: Any) -> None:
    """ValueError (saying how deep, and the limit) if ``value`` nests over MAX_NESTING."""
    depth = nesting_depth(value)
    if depth > MAX_NESTING:
        raise ValueError(f"{name} nest {depth} levels deep; the limit is {MAX_NESTING}")


def _check_parameters(value: dict[str, Any]) -> dict[str, Any]:
    check_nesting("parameters", value)  # first: the checks below recurse
    try:
        json.dumps(value, allow_nan=False)
    except ValueError as exc:
        raise ValueError("parameters must be plain JSON: NaN and Infinity are not allowed") from exc
    size = json_size(value)
    if size > MAX_PARAMETERS_BYTES:
        raise ValueError(
            f"parameters is {size} bytes serialised; the limit is {MAX_PARAMETERS_BYTES}"
        )
    return value


# A week at most by schema (a deployment's own limit, MAX_JOB_SECONDS, is lower: 6 h by
# default); within it, more than the deployment allows is a 422 naming its limit.
MAX_JOB_SECONDS_ASKED = 7 * 24 * 3600
MaxJobSeconds = Annotated[int, Field(ge=60, le=MAX_JOB_SECONDS_ASKED)]


class RunOptions(BaseModel):
    """Optional run options, mirroring `kedro run`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tags: NameList | None = None
    node_names: NameList | None = None
    from_nodes: NameList | None = None
    to_nodes: NameList | None = None
    from_inputs: NameList | None = None
    to_outputs: NameList | None = None
    namespaces: NameList | None = None
    load_versions: dict[ShortStr, ShortStr] | None = Field(None, max_length=MAX_OPTION_ITEMS)
    env: EnvName | None = None
    # False: the job runs on one worker even where its pipeline has independent groups.
    fan_out: StrictBool | None = None

    def given(self) -> dict[str, Any]:
        """Only the options the caller set (the job record's and the message's shape)."""
        return self.model_dump(exclude_none=True)

    def filters(self) -> dict[str, list[str]]:
        """The options that choose nodes, those set and not empty, by their names in
        `kedro run` and KedroSession.run (Kedro's Pipeline.filter calls `namespaces`
        `node_namespaces`)."""
        chosen = {
            "tags": self.tags,
            "node_names": self.node_names,
            "namespaces": self.namespaces,
            "from_nodes": self.from_nodes,
            "to_nodes": self.to_nodes,
            "from_inputs": self.from_inputs,
            "to_outputs": self.to_outputs,
        }
        return {name: list(value) for name, value in chosen.items() if value}


RUN_OPTION_NAMES = frozenset(RunOptions.model_fields)


class JobSpec(BaseModel):
    """What a client sets for a job, and so what every copy of it carries: the submit
    request, the queue message, a schedule's job and the job record are each this model and
    more. A copy between them is ``spec()`` validated into the other model, never a field
    list, so a new client-set field is added here once (docs/architecture.md, "Add a job
    field"). These are the types the record keeps: what was accepted once is read as it was
    (an item from before a limit was added, a damaged item's placeholder); the limits an
    input is checked against are CheckedSpec's."""

    pipeline_name: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    # The run options as asked (typed from the request to the runner).
    options: RunOptions = Field(default_factory=RunOptions)
    compute: Compute = DEFAULT_COMPUTE
    max_job_seconds: int | None = None  # the job's own limit on its whole run (None: default)

    def spec(self) -> dict[str, Any]:
        """The client-set fields, dumped (what the other models validate from), in one form
        whichever model holds them: fields and run options left None (the default) are out."""
        return self.model_dump(include=SPEC_FIELDS, exclude_none=True)


SPEC_FIELDS: set[str] = set(JobSpec.model_fields)


class CheckedSpec(JobSpec):
    """The client-set fields as an input (a request, a message) must have them: a field
    with a limit narrows its type here, next to its definition above."""

    pipeline_name: PipelineName
    parameters: dict[StrictStr, Any] = Field(default_factory=dict)
    # At most the deployment's MAX_JOB_SECONDS (checked on submit: the API knows it).
    max_job_seconds: MaxJobSeconds | None = None

    _params = field_validator("parameters")(_check_parameters)


class JobRequest(CheckedSpec):
    """Body of ``POST /api/v1/jobs``: run options may sit at the top level (like `kedro run`
    flags) or under ``options`` (the shape of the job record), not both for one option."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _lift_top_level_options(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        top = {k: data[k] for k in RUN_OPTION_NAMES if k in data}
        if not top:
            return data
        rest = {k: v for k, v in data.items() if k not in RUN_OPTION_NAMES}
        nested = data.get("options", {})
        if not isinstance(nested, dict):
            return rest  # field validation reports the bad `options` (`[]`, null, ...) alone
        both = sorted(set(top) & set(nested))
        if both:
            raise ValueError(f"run option(s) given twice, at the top level and in options: {both}")
        return {**rest, "options": {**nested, **top}}


Overlap = Literal["allow", "skip", "queue"]
"""What a schedule's fire does while an earlier run of the same schedule is still running:
run anyway (allow), record the fire as a cancelled job and run nothing (skip), or wait for
the earlier runs to end (queue). See docs/schedules.md."""

# A schedule's name; EventBridge Scheduler's names are at most 64 characters, and the owner's
# digest takes 17 of them (core/scheduler.py).
SCHEDULE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,47}$"
SCHEDULE_NAME = re.compile(SCHEDULE_NAME_PATTERN)
ScheduleName = Annotated[StrictStr, StringConstraints(pattern=SCHEDULE_NAME_PATTERN)]


class JobMessage(CheckedSpec):
    """The queue message, version 1. The API always sets ``job_id``; other systems may not."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    job_id: Annotated[StrictStr, StringConstraints(pattern=JOB_ID_PATTERN)] | None = None
    user_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)] | None = None
    idempotency_key: (
        Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)] | None
    ) = None
    # A schedule's fire (EventBridge Scheduler fills ``scheduled_for`` in with the fire's
    # scheduled time): its job id comes from the schedule and that time, so a fire the
    # scheduler delivers twice makes one job.
    schedule: ScheduleName | None = None
    scheduled_for: datetime | None = None
    overlap: Overlap | None = None
    # A schedule's message for an owner no plain message may name (``anonymous``,
    # ``client:*``): the API's seal of (owner, schedule) under the deployment's key.
    owner_seal: Annotated[StrictStr, StringConstraints(max_length=128)] | None = None

    # A message says where only when it is elsewhere than the default (the message stays
    # what it was for every job that runs on Lambda); a ``null`` from another system is it.
    @field_validator("compute", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any) -> Any:
        return DEFAULT_COMPUTE if value is None else value

    @model_serializer(mode="wrap")
    def _default_compute_unsaid(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        data = handler(self)
        if (
            info.mode_is_json()
            and isinstance(data, dict)
            and data.get("compute") == DEFAULT_COMPUTE
        ):
            del data["compute"]
        return data

    @model_validator(mode="after")
    def _fire_has_its_time(self) -> JobMessage:
        if (self.schedule is None) != (self.scheduled_for is None):
            raise ValueError("schedule and scheduled_for come together")
        return self

    def derived_job_id(self, message_id: str) -> str:
        """A stable id for a message with no ``job_id``: redelivery never makes a second job,
        and two (user, idempotency key) pairs never share one."""
        if self.job_id:
            return self.job_id
        if self.schedule is not None and self.scheduled_for is not None:
            fire = self.scheduled_for.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            seed = "schedule:" + json.dumps([self.user_id or "", self.schedule, fire])
            return str(uuid.uuid5(JOB_ID_NAMESPACE, seed))
        if not self.idempotency_key:
            return str(uuid.uuid5(JOB_ID_NAMESPACE, f"msg:{message_id}"))
        user = self.user_id or ""
        if ":" in user:
            # "key:<user>:<key>" is ambiguous once the user holds a ':' ("team:a" + "K" and
            # "team" + "a:K"); such a user gets a JSON pair, under a prefix no first-form seed
            # has. A user without ':' keeps the first form, so ids already made stay the same.
            seed = "key2:" + json.dumps([user, self.idempotency_key])
        else:
            seed = f"key:{user}:{self.idempotency_key}"
        return str(uuid.uuid5(JOB_ID_NAMESPACE, seed))
