"""The REST API over HTTP, with its errors made readable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

API_PREFIX = "/api/v1"


class ApiError(Exception):
    """The API answered with an error (``status``), or could not be reached (``status`` 0)."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(describe(detail))


def describe(detail: Any) -> str:
    """FastAPI's ``detail``: one sentence, or a list of field errors (one per line)."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        lines = []
        for error in detail:
            if isinstance(error, dict) and "msg" in error:
                where = ".".join(str(part) for part in error.get("loc") or [])
                lines.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
            else:
                lines.append(str(error))
        return "\n".join(lines)
    return str(detail)


def base_url(api: str) -> str:
    """The server's root: `http://host:8000`, or the stack's `ApiUrl` output (`.../api/v1`)."""
    root = api.rstrip("/")
    return root.removesuffix(API_PREFIX) if root.endswith(API_PREFIX) else root


def job_path(job_id: str, *rest: str) -> str:
    return "/".join([f"{API_PREFIX}/jobs/{quote(job_id, safe='')}", *rest])


class Api:
    def __init__(self, api: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.root = base_url(api)
        # The header the API asks of a change with no JSON body (cancel, retry).
        headers = {"User-Agent": "kedro-jobs-cli", "X-Kedro-Jobs-Client": "cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=self.root, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach the API at {self.root}: {exc}") from exc
        if response.is_error:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text or response.reason_phrase
            raise ApiError(response.status_code, detail)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    # The routes.
    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        job: dict[str, Any] = self.json("POST", f"{API_PREFIX}/jobs", json=body, headers=headers)
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.json("GET", job_path(job_id))
        return job

    def jobs(self, **query: Any) -> dict[str, Any]:
        params = {k: v for k, v in query.items() if v is not None}
        page: dict[str, Any] = self.json("GET", f"{API_PREFIX}/jobs", params=params)
        return page

    def cancel(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.json("POST", job_path(job_id, "cancel"))
        return job

    def retry(self, job_id: str, *, from_failure: bool = False) -> dict[str, Any]:
        body = {"json": {"from_failure": True}} if from_failure else {}
        job: dict[str, Any] = self.json("POST", job_path(job_id, "retry"), **body)
        return job

    def logs(self, job_id: str) -> str | None:
        """The run's log, or None while there is none (404 for a job that exists)."""
        try:
            return self.request("GET", job_path(job_id, "logs")).text
        except ApiError as exc:
            if exc.status == 404:
                self.job(job_id)  # an unknown job is an error, a missing log is not
                return None
            raise

    def outputs(self, job_id: str) -> list[dict[str, Any]] | None:
        """The outputs with download links; None if this API has no outputs route."""
        try:
            body = self.json("GET", job_path(job_id, "outputs"))
        except ApiError as exc:
            if exc.status == 404 and exc.detail == "Not Found":  # the route, not the job
                return None
            raise
        outputs: list[dict[str, Any]] = body.get("outputs") or []
        return outputs

    def pipeline(self, name: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = self.json("GET", f"{API_PREFIX}/pipelines/{quote(name)}")
        except ApiError:
            return None
        return info

    @contextmanager
    def download(self, url: str) -> Iterator[httpx.Response]:
        """Stream ``url``: a route of this API gets the token; any other host (a presigned S3
        URL) gets none, since its signature is its authorisation."""
        target = httpx.URL(url)
        if not target.is_absolute_url:
            target = httpx.URL(self.root).join(url)
        root = httpx.URL(self.root)
        ours = (target.scheme, target.host, target.port) == (root.scheme, root.host, root.port)
        client = self.http if ours else httpx.Client(timeout=self.http.timeout)
        try:
            with client.stream("GET", target, follow_redirects=True) as response:
                if response.is_error:
                    response.read()
                    raise ApiError(response.status_code, response.text[:500])
                yield response
        except httpx.HTTPError as exc:
            raise ApiError(0, f"download failed: {exc}") from exc
        finally:
            if client is not self.http:
                client.close()
