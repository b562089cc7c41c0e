"""Serves the web page at `/` and its assets under `/ui/`. The files are package data;
the page talks to `/api/v1` from the browser, with the caller's token, like any client."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)

# Only these files are served: a fixed map, so no path from the URL ever reaches the disk.
_ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "schedules.js": "text/javascript; charset=utf-8",
    # The job page's node timeline and pipeline graph.
    "timeline.js": "text/javascript; charset=utf-8",
    "graph.js": "text/javascript; charset=utf-8",
}

# The page runs only its own script and style, and reaches only its own API; a value that
# slipped into the DOM as markup could still not run (the page builds it with textContent).
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Short-lived: a new deployment's page is picked up within a minute.
    "Cache-Control": "public, max-age=60",
}


@cache
def _read(name: str) -> bytes:
    return resources.files("kedro_jobs.api.web").joinpath("static", name).read_bytes()


@router.get("/")
def index() -> Response:
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/ui/{name}")
def asset(name: str) -> Response:
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"No such file: {name[:64]!r}")
    return Response(_read(name), media_type=media_type, headers=_HEADERS)
