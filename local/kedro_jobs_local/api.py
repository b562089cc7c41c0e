"""The API function (the same FastAPI app the Lambda runs) under uvicorn: one of `make dev`'s
processes."""

from __future__ import annotations

import argparse

from kedro_jobs_local.lifetime import stack_process, started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = stack_process(parser, argv, log=False)
    import uvicorn

    from kedro_jobs.api.app import create_app

    app = create_app()
    started()
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
