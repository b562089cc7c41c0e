"""HTTP methods: HEAD answered by the GET route, and the `Allow` header of a 405."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods some route takes at the request's path (HEAD wherever GET is). Each
    route is asked whether it matches under each method: FastAPI keeps an included router as
    one wrapper, so its routes cannot be listed."""
    allowed = {
        method
        for method in _METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL
            for route in app.router.routes
        )
    }
    if "GET" in allowed:
        allowed.add("HEAD")
    return sorted(allowed)


class HeadAsGet:
    """HEAD runs the GET route and sends its status and headers without the body (FastAPI's
    routes take HEAD only where declared, so every GET route would answer HEAD with 405)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
