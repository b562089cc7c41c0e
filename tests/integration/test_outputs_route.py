"""`GET /jobs/{id}/outputs` and `GET /jobs/{id}/outputs/{dataset}` through the real API
handler (API Gateway events through Mangum) against a real moto server: job records are
written as the consumer writes them (claim, then finish with outputs), objects are put in
the moto bucket, and every presigned URL is fetched over HTTP with no credentials."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from kedro_jobs.api import handler as api
from kedro_jobs.core.artifacts import ArtifactStore, outputs_key
from kedro_jobs.core.models import Job
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import ApiJobs, RunJobs
from kedro_jobs_local.lambda_context import LocalContext
from kedro_jobs_local.lambda_events import http_api_event

from .conftest import ApiCall, Aws

HOST = {"host": "abc123.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https"}
# Not UTF-8 and not text: a download must give these bytes back unchanged.
PICKLE = b"\x80\x05\x95\x00\xff\xfe" + bytes(range(256)) * 8


def _job(store: ApiJobs, user: str, status: JobStatus = JobStatus.COMPLETED, **finish: Any) -> Job:
    """A job as the consumer leaves it: created, claimed, then finished with ``finish``."""
    run_jobs = RunJobs.over(store)
    job = store.create(
        Job.new(pipeline_name="data_science", parameters={}, options={}, user_id=user)
    )
    if status is JobStatus.PENDING:
        return job
    claimed = run_jobs.claim(job.id, lease_seconds=60, max_attempts=3, user_id=user).job
    assert claimed is not None
    if status is JobStatus.RUNNING:
        return claimed
    finished = run_jobs.finish(claimed, status, **finish)
    assert finished is not None
    return finished


def _output(name: str, uri: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "kedro_datasets.pickle.PickleDataset", "uri": uri,
            "version": None, "size": size, **extra}  # fmt: skip


def _put(aws: Aws, key: str, body: bytes) -> str:
    aws.s3.put_object(Bucket=aws.resources.bucket, Key=key, Body=body)
    return f"s3://{aws.resources.bucket}/{key}"


def _raw(path: str, user: str) -> dict[str, Any]:
    """The handler's raw response (a file's body comes back base64-encoded)."""
    event = http_api_event("GET", path, claims={"sub": user}, headers=HOST)
    response: dict[str, Any] = api.handler(event, LocalContext(29, "ApiFunction"))
    return response


def _raw_query(path: str, query: dict[str, str], user: str) -> dict[str, Any]:
    event = http_api_event("GET", path, claims={"sub": user}, headers=HOST, query=query)
    response: dict[str, Any] = api.handler(event, LocalContext(29, "ApiFunction"))
    return response


def _body(response: dict[str, Any]) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def _download(url: str) -> httpx.Response:
    # What a user's browser or curl does with the URL: a plain GET, no AWS credentials.
    return httpx.get(url, timeout=10)


def test_list_gives_each_output_a_presigned_url_that_downloads_its_bytes(
    api_call: ApiCall, aws: Aws, store: ApiJobs
) -> None:
    version = "2026-11-24T10.00.00.000Z-abcdef123456"
    csv = b"id,price\n1,9.5\n2,10.25\n"
    outputs = [
        _output(
            "regressor",
            _put(aws, f"data/data/06_models/regressor.pickle/{version}/regressor.pickle", PICKLE),
            len(PICKLE),
            version=version,
        ),
        _output("model_input_table", _put(aws, "data/data/03_primary/mit.csv", csv), len(csv)),
    ]
    job = _job(store, "alice", outputs=outputs)

    status, body, _ = api_call("GET", f"/api/v1/jobs/{job.id}/outputs", user="alice")

    assert status == 200
    listed = body["outputs"]
    # Not a folder: "files" is null.
    assert [{k: o[k] for k in o if k not in ("url", "files")} for o in listed] == outputs
    assert all(o["files"] is None for o in listed)
    by_name = {o["name"]: o for o in listed}
    assert _download(by_name["regressor"]["url"]).content == PICKLE
    assert _download(by_name["model_input_table"]["url"]).content == csv
    # One hour unless configured otherwise.
    assert parse_qs(urlsplit(by_name["regressor"]["url"]).query)["X-Amz-Expires"] == ["3600"]


def test_url_lifetime_is_a_setting(api_call: ApiCall, aws: Aws, store: ApiJobs) -> None:
    api_call.configure(output_url_seconds=120)
    uri = _put(aws, "data/data/08_reporting/plot.png", b"\x89PNG")
    job = _job(store, "alice", outputs=[_output("plot", uri, 4)])

    _, body, _ = api_call("GET", f"/api/v1/jobs/{job.id}/outputs", user="alice")

    url = body["outputs"][0]["url"]
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["120"]
    assert _download(url).content == b"\x89PNG"


@pytest.mark.parametrize("rest", [False, True], ids=["http-api-v2", "rest-api-v1"])
@pytest.mark.parametrize(
    "name", ["regressor", "data_science.active_modelling_pipeline.regressor", "companies@pandas"]
)
def test_download_redirects_to_a_presigned_url(
    api_call: ApiCall, aws: Aws, store: ApiJobs, rest: bool, name: str
) -> None:
    uri = _put(aws, f"data/data/06_models/{name}.pickle", PICKLE)
    job = _job(store, "alice", outputs=[_output(name, uri, len(PICKLE))])

    status, _, headers = api_call(
        "GET", f"/api/v1/jobs/{job.id}/outputs/{name}", rest=rest, user="alice"
    )

    assert status == 307
    assert headers["cache-control"] == "no-store"  # the URL expires; the redirect must not last
    assert _download(headers["location"]).content == PICKLE


def test_a_local_data_root_is_served_byte_exact_at_the_listed_url(
    api_call: ApiCall, store: ApiJobs, tmp_path: Path
) -> None:
    model = tmp_path / "data" / "06_models" / "regressor.pickle" / "v1" / "regressor.pickle"
    model.parent.mkdir(parents=True)
    model.write_bytes(PICKLE)
    name = "data_science.regressor@pickle"
    job = _job(store, "alice", outputs=[_output(name, str(model), len(PICKLE), version="v1")])

    # The link comes from the configured address, whatever Host the request claims.
    api_call.configure(api_base_url="http://127.0.0.1:8000")
    forged = {"host": "attacker.example", "x-forwarded-proto": "https"}
    _, body, _ = api_call("GET", f"/api/v1/jobs/{job.id}/outputs", user="alice", headers=forged)

    url = body["outputs"][0]["url"]
    assert url == f"http://127.0.0.1:8000/api/v1/jobs/{job.id}/outputs/{name}"
    response = _raw(urlsplit(url).path, "alice")
    assert response["statusCode"] == 200
    assert _body(response) == PICKLE
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["content-type"] == "application/octet-stream"
    assert 'filename="regressor.pickle"' in headers["content-disposition"]


def test_without_a_configured_address_local_links_are_relative_to_the_api(
    api_call: ApiCall, store: ApiJobs, tmp_path: Path
) -> None:
    model = tmp_path / "model.pickle"
    model.write_bytes(PICKLE)
    job = _job(store, "alice", outputs=[_output("model", str(model), len(PICKLE))])

    _, body, _ = api_call("GET", f"/api/v1/jobs/{job.id}/outputs", user="alice", headers=HOST)

    assert body["outputs"][0]["url"] == f"/api/v1/jobs/{job.id}/outputs/model"


def test_a_folder_output_lists_its_files_each_with_a_url(
    api_call: ApiCall, aws: Aws, store: ApiJobs, tmp_path: Path
) -> None:
    local = tmp_path / "data" / "parts"
    (local / "2026").mkdir(parents=True)
    (local / "part-0.csv").write_bytes(b"a\n0\n")
    (local / "2026" / "part-1.csv").write_bytes(PICKLE)
    (tmp_path / "data" / "secret.csv").write_bytes(b"not this job's")
    s3 = f"s3://{aws.resources.bucket}/data/data/parts"
    _put(aws, "data/data/parts/part-0.csv", b"a\n0\n")
    _put(aws, "data/data/parts/part-1.csv", PICKLE)
    _put(aws, "data/data/parts_other/x.csv", b"another dataset")
    job = _job(
        store,
        "alice",
        outputs=[
            _output("local_parts", str(local), 12, files=2),
            _output("s3_parts", s3, 12, files=2),
        ],
    )
    api_call.configure(api_base_url="https://jobs.example.org")
    base = f"/api/v1/jobs/{job.id}/outputs"

    _, listed, _ = api_call("GET", base, user="alice")
    urls = {o["name"]: o["url"] for o in listed["outputs"]}
    # A folder's URL is its list of files, on this API (never a consumer-local path).
    assert urls == {
        "local_parts": f"https://jobs.example.org{base}/local_parts",
        "s3_parts": f"https://jobs.example.org{base}/s3_parts",
    }

    status, folder, _ = api_call("GET", f"{base}/s3_parts", user="alice")
    assert status == 200 and folder["uri"] == s3 and folder["truncated"] is False
    assert [(f["path"], f["size"]) for f in folder["files"]] == [
        ("part-0.csv", 4),
        ("part-1.csv", len(PICKLE)),
    ]
    assert _download(folder["files"][1]["url"]).content == PICKLE

    status, folder, _ = api_call("GET", f"{base}/local_parts", user="alice")
    assert status == 200
    files = {f["path"]: f for f in folder["files"]}
    assert set(files) == {"part-0.csv", "2026/part-1.csv"}
    url = files["2026/part-1.csv"]["url"]
    assert url == f"https://jobs.example.org{base}/local_parts?file=2026/part-1.csv"
    response = _raw_query(urlsplit(url).path, {"file": "2026/part-1.csv"}, "alice")
    assert response["statusCode"] == 200 and _body(response) == PICKLE

    # Only a listed file: never a path the query makes up.
    for name in ("local_parts", "s3_parts"):
        for attempt in ("../secret.csv", "/etc/passwd", "2026/../../secret.csv", "nope.csv"):
            status, body, headers = api_call(
                "GET", f"{base}/{name}", user="alice", query={"file": attempt}
            )
            assert status == 404 and "has no file" in body["detail"], (name, attempt)
            assert "location" not in headers


def test_a_list_too_large_for_the_record_is_read_from_s3(
    api_call: ApiCall, aws: Aws, store: ApiJobs
) -> None:
    outputs = [
        _output(f"partition_{i:03}", _put(aws, f"data/data/p/{i:03}.bin", bytes([i])), 1)
        for i in range(40)
    ]
    artifacts = ArtifactStore(aws.resources.bucket, s3=aws.s3)
    # As the consumer leaves it when the list is over RESULTS_INLINE_MAX_BYTES: the list in
    # S3, only its location on the record (written by finish(), and by a plain create).
    finished = _job(store, "alice", outputs_location=artifacts.uri(outputs_key("later")))
    created = Job.new(pipeline_name="p", parameters={}, options={}, user_id="alice")
    store.create(
        created.model_copy(
            update={
                "status": JobStatus.COMPLETED,
                "outputs_location": artifacts.put_json(outputs_key(created.id), outputs),
            }
        )
    )
    artifacts.put_json(outputs_key("later"), outputs)

    for job_id in (finished.id, created.id):
        status, body, _ = api_call("GET", f"/api/v1/jobs/{job_id}/outputs", user="alice")
        assert status == 200
        assert [o["name"] for o in body["outputs"]] == [o["name"] for o in outputs]
        assert _download(body["outputs"][7]["url"]).content == bytes([7])
        status, _, headers = api_call(
            "GET", f"/api/v1/jobs/{job_id}/outputs/partition_039", user="alice"
        )
        assert status == 307 and _download(headers["location"]).content == bytes([39])


def test_a_list_no_longer_stored_is_a_clear_404(
    api_call: ApiCall, aws: Aws, store: ApiJobs
) -> None:
    gone = f"s3://{aws.resources.bucket}/outputs/never-written.json"
    job = _job(store, "alice", outputs_location=gone)

    status, body, _ = api_call("GET", f"/api/v1/jobs/{job.id}/outputs", user="alice")

    assert status == 404 and "no longer stored" in body["detail"] and gone in body["detail"]


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.FAILED])
def test_a_job_without_outputs_lists_none(
    api_call: ApiCall, store: ApiJobs, status: JobStatus
) -> None:
    finish = {"error_message": "ValueError: boom (node: train)"} if status.terminal else {}
    job = _job(store, "alice", status, **finish)

    assert api_call("GET", f"/api/v1/jobs/{job.id}/outputs", user="alice")[:2] == (
        200,
        {"outputs": []},
    )
    status_code, body, _ = api_call("GET", f"/api/v1/jobs/{job.id}/outputs/x", user="alice")
    assert status_code == 404 and "no output named 'x'" in body["detail"]


def test_another_users_job_is_not_found(api_call: ApiCall, aws: Aws, store: ApiJobs) -> None:
    uri = _put(aws, "data/data/06_models/regressor.pickle", PICKLE)
    job = _job(store, "alice", outputs=[_output("regressor", uri, len(PICKLE))])

    for path in (f"/api/v1/jobs/{job.id}/outputs", f"/api/v1/jobs/{job.id}/outputs/regressor"):
        status, body, headers = api_call("GET", path, user="bob")
        assert status == 404
        assert body == {"detail": f"Job {job.id!r} not found"}
        assert "location" not in headers


def test_an_unknown_dataset_is_a_404_naming_the_jobs_outputs(
    api_call: ApiCall, aws: Aws, store: ApiJobs
) -> None:
    uri = _put(aws, "data/data/06_models/regressor.pickle", PICKLE)
    job = _job(store, "alice", outputs=[_output("regressor", uri, len(PICKLE))])

    status, body, _ = api_call("GET", f"/api/v1/jobs/{job.id}/outputs/regresor", user="alice")

    assert status == 404
    assert body["detail"] == (
        f"Job {job.id!r} has no output named 'regresor'; its outputs: 'regressor'"
    )


def test_nothing_but_a_recorded_uri_is_ever_served(
    api_call: ApiCall, aws: Aws, store: ApiJobs, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    (root / "03_primary").mkdir(parents=True)
    recorded = root / "03_primary" / "table.csv"
    recorded.write_bytes(b"a,b\n1,2\n")
    (root / "03_primary" / "secret.csv").write_bytes(b"not this job's")
    (root / "partitions").mkdir()
    (root / "partitions" / "p1.csv").write_bytes(b"x\n")
    gone = root / "removed.csv"
    s3_folder = f"s3://{aws.resources.bucket}/data/data/partitions"
    _put(aws, "data/data/partitions/p1.csv", b"x\n")
    job = _job(
        store,
        "alice",
        outputs=[
            _output("table", str(recorded), 8),
            _output("partitions", str(root / "partitions"), 2),
            _output("removed", str(gone), 1),
            _output("s3_partitions", s3_folder, 2),
            _output("elsewhere", "gcs://bucket/data/x.csv", 1),
        ],
    )
    base = f"/api/v1/jobs/{job.id}/outputs"

    assert _body(_raw(f"{base}/table", "alice")) == b"a,b\n1,2\n"
    # Paths and names that are not a recorded dataset name: the name is never a path.
    for attempt in (
        "secret.csv",
        "table/../secret.csv",
        "../../../../etc/passwd",
        str(root / "03_primary" / "secret.csv"),
        str(recorded),
        "%2Fetc%2Fpasswd",
        unquote("%2Fetc%2Fpasswd"),
    ):
        status, body, _ = api_call("GET", f"{base}/{attempt}", user="alice")
        assert status == 404, attempt
        assert "not this job's" not in str(body)
    # Recorded, but nothing there the API can serve.
    for name, reason in [
        ("removed", "is no longer at"),
        ("elsewhere", "cannot serve"),
    ]:
        status, body, headers = api_call("GET", f"{base}/{name}", user="alice")
        assert status == 404 and reason in body["detail"], name
        assert "location" not in headers
    # The list still shows them; only a location the API cannot serve has no URL.
    _, listed, _ = api_call("GET", base, user="alice")
    urls = {o["name"]: o["url"] for o in listed["outputs"]}
    assert urls["elsewhere"] is None
    assert all(urls[n] for n in ("table", "partitions", "removed", "s3_partitions"))
    # A folder (recorded before outputs said so) answers with its files.
    for name in ("partitions", "s3_partitions"):
        status, folder, _ = api_call("GET", f"{base}/{name}", user="alice")
        assert status == 200 and [f["path"] for f in folder["files"]] == ["p1.csv"], name
    assert os.path.exists(recorded)  # served, never moved or touched
