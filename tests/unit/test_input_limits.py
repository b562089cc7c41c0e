"""Input limits (issue 11): nesting, `env`, `options`, cursors, derived job ids, queue message
bodies, and stored items that cannot be read whole."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from kedro_jobs.core.errors import InvalidCursor
from kedro_jobs.core.messages import BadMessage, parse_body
from kedro_jobs.core.models import Job
from kedro_jobs.core.queue import MAX_MESSAGE_BYTES, UnsendableMessage, encode
from kedro_jobs.core.requests import (
    JOB_ID_NAMESPACE,
    MAX_NESTING,
    JobMessage,
    JobRequest,
    RunOptions,
    nesting_depth,
)
from kedro_jobs.core.store import decode_cursor, from_item, to_item


def nested(levels: int) -> dict[str, Any]:
    """A parameters object ``levels`` deep (itself level 1), built without recursion."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


# -- nesting --------------------------------------------------------------------------------


def test_nesting_depth_counts_objects_and_arrays() -> None:
    assert nesting_depth(1) == 0
    assert nesting_depth({}) == 1
    assert nesting_depth({"a": [1, {"b": None}]}) == 3
    assert nesting_depth(nested(5000)) == 5000  # deeper than the interpreter's stack


@pytest.mark.parametrize("model", [JobRequest, JobMessage])
def test_parameters_nest_at_most_32_levels(model: type[JobRequest | JobMessage]) -> None:
    base: dict[str, Any] = {"version": 1} if model is JobMessage else {}
    accepted = model.model_validate({**base, "pipeline_name": "p", "parameters": nested(32)})
    assert nesting_depth(accepted.parameters) == MAX_NESTING == 32
    for levels in (33, 256, 300, 5000):
        with pytest.raises(ValidationError) as caught:
            model.model_validate({**base, "pipeline_name": "p", "parameters": nested(levels)})
        assert f"parameters nest {levels} levels deep; the limit is 32" in str(caught.value)


def test_a_list_counts_as_a_level() -> None:
    deep_list: Any = 1
    for _ in range(40):
        deep_list = [deep_list]
    with pytest.raises(ValidationError, match="nest 41 levels deep"):
        JobRequest.model_validate({"pipeline_name": "p", "parameters": {"x": deep_list}})


# -- env and options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env", [".", "..", ".hidden", "../conf", "a/b", "a\\b", "", "x" * 65, "base\n"]
)
def test_env_is_a_plain_config_name(env: str) -> None:
    for body in (
        {"pipeline_name": "p", "env": env},
        {"pipeline_name": "p", "options": {"env": env}},
    ):
        with pytest.raises(ValidationError, match="env must name a folder"):
            JobRequest.model_validate(body)


@pytest.mark.parametrize("env", ["base", "local", "prod-eu", "prod.eu", "test_2"])
def test_plain_env_names_are_accepted(env: str) -> None:
    assert RunOptions(env=env).given() == {"env": env}


@pytest.mark.parametrize("options", [[], None, "tags", 1, ["tags"]])
def test_options_must_be_an_object_even_beside_a_top_level_option(options: Any) -> None:
    for body in (
        {"pipeline_name": "p", "options": options, "tags": ["a"]},
        {"pipeline_name": "p", "options": options},
    ):
        with pytest.raises(ValidationError) as caught:
            JobRequest.model_validate(body)
        assert [e["loc"] for e in caught.value.errors()] == [("options",)]


def test_an_empty_options_object_beside_top_level_options_is_fine() -> None:
    request = JobRequest.model_validate({"pipeline_name": "p", "options": {}, "tags": ["a"]})
    assert request.options.given() == {"tags": ["a"]}


# -- derived job ids --------------------------------------------------------------------------


def _message(**fields: Any) -> JobMessage:
    return JobMessage.model_validate({"version": 1, "pipeline_name": "p", **fields})


def test_user_and_key_pairs_that_joined_alike_get_different_ids() -> None:
    first = _message(user_id="team:a", idempotency_key="K").derived_job_id("m1")
    second = _message(user_id="team", idempotency_key="a:K").derived_job_id("m2")
    assert first != second
    also = _message(user_id="team:a:", idempotency_key="K").derived_job_id("m3")
    assert len({first, second, also}) == 3


def test_ids_of_messages_that_already_worked_are_unchanged() -> None:
    # The first encoding, for users without ':' (every id derived before the fix stays).
    def before(seed: str) -> str:
        return str(uuid.uuid5(JOB_ID_NAMESPACE, seed))

    assert _message(user_id="alice", idempotency_key="a:K").derived_job_id("m") == before(
        "key:alice:a:K"
    )
    assert _message(idempotency_key="nightly").derived_job_id("m") == before("key::nightly")
    assert _message().derived_job_id("msg-1") == before("msg:msg-1")
    assert _message(job_id="given").derived_job_id("m") == "given"


# -- cursors ----------------------------------------------------------------------------------


def _b64(text: str | bytes) -> str:
    raw = text if isinstance(text, bytes) else text.encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _b64("[" * 3000),  # RecursionError in json.loads, before the fix a 500
        _b64("{" * 3000),
        _b64('{"a":' * 3000),
        _b64("1" * 5000),  # over Python's int-string limit
        _b64(b"\xff\xfe[1]"),  # not UTF-8
        "é",
        "=",
    ],
)
def test_a_crafted_cursor_is_only_ever_an_invalid_cursor(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, hash_attr="user_id", hash_value="alice")


# -- queue message bodies ---------------------------------------------------------------------


def _body(levels: int, **fields: Any) -> str:
    return json.dumps({"version": 1, "pipeline_name": "p", "parameters": nested(levels), **fields})


def test_a_message_nested_300_deep_is_a_bad_message_naming_its_job() -> None:
    named = parse_body(_body(300, job_id="j-1"))
    assert isinstance(named, BadMessage)
    assert named.job_id == "j-1"
    assert "parameters nest 300 levels deep; the limit is 32" in named.reason
    orphan = parse_body(_body(300))
    assert isinstance(orphan, BadMessage) and orphan.job_id is None


def test_a_body_deeper_than_the_stack_is_a_bad_message() -> None:
    for body in ("[" * 100_000, '{"a":' * 50_000):
        parsed = parse_body(body)
        assert isinstance(parsed, BadMessage)
        assert parsed.reason == "message body nests too deeply to read"


def test_a_message_too_large_for_sqs_is_refused_before_sending() -> None:
    message = JobMessage(
        version=1, pipeline_name="p", options=RunOptions(tags=["t" * 1000] * MAX_NESTING * 10)
    )
    with pytest.raises(UnsendableMessage, match=f"SQS takes at most {MAX_MESSAGE_BYTES}"):
        encode(message)
    assert json.loads(encode(JobMessage(version=1, pipeline_name="p")))["pipeline_name"] == "p"


# -- stored items that cannot be read whole ---------------------------------------------------


def _item(**attributes: Any) -> dict[str, Any]:
    job = Job.new(pipeline_name="p", parameters={"n": 1}, options={}, user_id="alice")
    return {**to_item(job), **attributes}


@pytest.mark.parametrize(
    ("attribute", "left_out", "why"),
    [
        ({"parameters": {"S": json.dumps(nested(300))}}, "parameters", "nest 300 levels deep"),
        ({"parameters": {"S": "[" * 100_000}}, "parameters", "nested too deeply to read"),
        ({"results": {"S": "{not json"}}, "results", "results is not JSON"),
        ({"progress": {"S": '{"total_nodes": "many"}'}}, "progress", "not a valid value"),
        ({"status": {"S": "exploded"}}, "status", "not a valid value"),
        ({"attempts": {"N": "1.5"}}, "attempts", "not a valid value"),
        ({"created_at": {"S": "yesterday"}}, "created_at", "not a valid value"),
    ],
)
def test_a_damaged_item_is_shown_without_what_cannot_be_read(
    attribute: dict[str, Any], left_out: str, why: str
) -> None:
    item = _item(**attribute)
    job = from_item(item, lenient=True)
    assert job.id == item["id"]["S"] and job.user_id == "alice"
    assert job.unreadable == (left_out,)
    assert job.error_message is not None
    assert "could not be read and is not shown" in job.error_message and why in job.error_message
    job.model_dump_json()  # what a response serialises


def test_a_whole_item_reads_the_same_either_way() -> None:
    item = _item()
    assert from_item(item, lenient=True) == from_item(item)
    assert from_item(item, lenient=True).unreadable == ()


def test_an_item_missing_its_required_fields_still_shows_its_id() -> None:
    job = from_item({"id": {"S": "j-9"}, "user_id": {"S": "alice"}}, lenient=True)
    assert job.id == "j-9" and set(job.unreadable) == {"created_at", "pipeline_name"}


def test_an_unreadable_owner_is_no_one_not_anonymous() -> None:
    for owner in ({"N": "7"}, None):
        item = (
            _item(user_id=owner) if owner else {k: v for k, v in _item().items() if k != "user_id"}
        )
        job = from_item(item, lenient=True)
        assert job.user_id == "" and "user_id" in job.unreadable
