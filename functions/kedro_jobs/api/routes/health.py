"""`/api/v1/health`: one check per dependency; 503 naming the one that failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from kedro_jobs.api.services import Services, get_services
from kedro_jobs.core.errors import DependencyUnavailable

router = APIRouter(tags=["health"])


@router.get("/health", summary="Health of the table, queue and bucket")
def health(services: Annotated[Services, Depends(get_services)]) -> JSONResponse:
    checks: dict[str, Callable[[], None]] = {
        "table": services.store.ping,
        "queue": services.queue.ping,
        "bucket": services.artifacts.ping,
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except DependencyUnavailable as exc:
            results[name] = f"error: {exc.reason}"
    failed = [name for name, result in results.items() if result != "ok"]
    body = {
        "status": "ok" if not failed else "unavailable",
        "checks": results,
        **({"detail": f"unavailable: {', '.join(failed)}"} if failed else {}),
    }
    return JSONResponse(body, status_code=503 if failed else 200)
