"""Refusing a simple cross-site request on every route that changes something.

Without an authorizer (a local stack, an API on a private network) a page on another origin
may still send a "simple" request (`fetch(..., {mode: "no-cors"})`, a form post): the browser
sends it without asking, as long as its Content-Type is text/plain, a form encoding or none,
and it carries no custom header. Requiring `Content-Type: application/json` or the
``X-Kedro-Jobs-Client`` header makes every such request fail here, before it changes
anything; the web page, the CLI and any script that posts JSON send one of them.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from kedro_jobs.api.app_models import ErrorBody

CLIENT_HEADER = "X-Kedro-Jobs-Client"

CROSS_SITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    415: {
        "model": ErrorBody,
        "description": "Neither `Content-Type: application/json` nor the X-Kedro-Jobs-Client "
        "header: refused, as a cross-site request could be",
    }
}


def refuse_cross_site(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/json" or request.headers.get(CLIENT_HEADER):
        return
    raise HTTPException(
        415,
        f"A request that changes something must say `Content-Type: application/json` or carry "
        f"the {CLIENT_HEADER} header (a page on another site cannot send either)",
    )
