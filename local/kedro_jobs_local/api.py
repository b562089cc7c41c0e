"""The API function (the same FastAPI app the Lambda runs) under uvicorn: one of `make dev`'s
processes."""

from __future__ import annotations

import argparse
import signal

from kedro_jobs_local.lifetime import exit_with_parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--parent", type=int, help="stop when this process is gone")
    args = parser.parse_args(argv)
    if args.parent:
        exit_with_parent(args.parent, signal.SIGTERM)
    import uvicorn

    from kedro_jobs.api.app import create_app

    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
