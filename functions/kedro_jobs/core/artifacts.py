"""The S3 artifact store: run logs, results too large for the job item, the pipeline manifest,
and presigned downloads of the datasets jobs committed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from kedro_jobs.core.aws import aws_errors, client, error_code

MANIFEST_KEY = "manifest/pipelines.json"
_DEPENDENCY = "S3"
# A conditional put that lost: the object is no longer the version read (412), or another
# conditional write to the key was in flight at that moment (409).
_CONDITION_FAILED = {"PreconditionFailed", "ConditionalRequestConflict"}


def log_key(job_id: str) -> str:
    return f"logs/{job_id}.log"


def results_key(job_id: str) -> str:
    return f"results/{job_id}.json"


def outputs_key(job_id: str) -> str:
    return f"outputs/{job_id}.json"


def parse_s3_uri(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of an ``s3://bucket/key`` URI; None for anything else."""
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return (bucket, key) if bucket and key else None


def _s3_location(uri: str) -> tuple[str, str]:
    location = parse_s3_uri(uri)
    if location is None:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return location


@dataclass(frozen=True)
class Versioned:
    """A JSON object as read, with the version to write over: ``etag`` None (and ``value``
    None) when there was no such object."""

    value: Any
    etag: str | None


class ArtifactStore:
    def __init__(self, bucket: str, *, s3: Any = None, signer: Any = None) -> None:
        self.bucket = bucket
        self._client = s3
        self._signer = signer

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client("s3")
        return self._client

    @property
    def signer(self) -> Any:
        """An S3 client that only presigns (it never sends a request), made on first use.
        SigV4 by name: left to choose, botocore presigns S3 URLs in us-east-1 with SigV2,
        which S3 accepts only for some buckets made before mid-2020."""
        if self._signer is None:
            self._signer = boto3.session.Session().client(
                "s3", config=Config(signature_version="s3v4")
            )
        return self._signer

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_text(self, key: str, text: str, *, content_type: str = "text/plain") -> str:
        with aws_errors(_DEPENDENCY):
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=text.encode(),
                ContentType=f"{content_type}; charset=utf-8",
            )
        return self.uri(key)

    def get_text(self, key: str) -> str | None:
        """The object's text, or None if there is no such object."""
        return self.get_text_at(self.uri(key))

    def put_json(self, key: str, value: Any) -> str:
        return self.put_text(key, json.dumps(value), content_type="application/json")

    def get_json(self, key: str) -> Any:
        text = self.get_text(key)
        return None if text is None else json.loads(text)

    def get_json_versioned(self, key: str) -> Versioned:
        """The object's JSON and its ETag, to write it back with ``put_json_if``."""
        with aws_errors(_DEPENDENCY):
            try:
                resp = self.client.get_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                    return Versioned(None, None)
                raise
            body: bytes = resp["Body"].read()
        return Versioned(json.loads(body.decode("utf-8", errors="replace")), resp["ETag"])

    def put_json_if(self, key: str, value: Any, *, etag: str | None) -> str | None:
        """Write the object only if it is still the version read (``etag``), or still absent
        (``etag`` None): S3's own conditional write (If-Match / If-None-Match). The new
        version's ETag; None, and nothing written, when another writer got there first (read
        again, merge, try again)."""
        conditions = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        with aws_errors(_DEPENDENCY):
            try:
                resp = self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=json.dumps(value).encode(),
                    ContentType="application/json; charset=utf-8",
                    **conditions,
                )
            except Exception as exc:
                if error_code(exc) in _CONDITION_FAILED:
                    return None
                raise
        written: str = resp["ETag"]
        return written

    # -- any object by URI (outputs may live under another prefix, or another bucket) ---------

    def get_text_at(self, uri: str) -> str | None:
        """The text of the object at an s3:// URI, or None if there is no such object."""
        bucket, key = _s3_location(uri)
        with aws_errors(_DEPENDENCY):
            try:
                resp = self.client.get_object(Bucket=bucket, Key=key)
            except Exception as exc:
                if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                    return None
                raise
            body: bytes = resp["Body"].read()
        return body.decode("utf-8", errors="replace")

    def exists_at(self, uri: str) -> bool:
        """Whether an object (not a "folder" prefix) is at an s3:// URI."""
        bucket, key = _s3_location(uri)
        with aws_errors(_DEPENDENCY):
            try:
                self.client.head_object(Bucket=bucket, Key=key)
            except Exception as exc:
                if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                    return False
                raise
        return True

    def list_at(self, uri: str, limit: int) -> tuple[list[tuple[str, int]], bool]:
        """The objects under an s3:// "folder" URI, at most ``limit``: (path relative to the
        folder, size) each, and whether more were left out."""
        bucket, key = _s3_location(uri)
        prefix = key.rstrip("/") + "/"
        found: list[tuple[str, int]] = []
        with aws_errors(_DEPENDENCY):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    if len(found) == limit:
                        return found, True
                    found.append((obj["Key"][len(prefix) :], int(obj["Size"])))
        return found, False

    def presigned_get(self, uri: str, seconds: int) -> str:
        """A URL that downloads the object at an s3:// URI for ``seconds``, without AWS
        credentials. Signed locally (no request is made) for boto3's endpoint, so it points
        at moto or LocalStack when AWS_ENDPOINT_URL does. The URL works only as long
        as the signer's credentials do: a Lambda role's session may end before ``seconds``."""
        bucket, key = _s3_location(uri)
        with aws_errors(_DEPENDENCY):
            url: str = self.signer.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds
            )
        return url

    def ping(self) -> None:
        with aws_errors(_DEPENDENCY):
            self.client.head_bucket(Bucket=self.bucket)
