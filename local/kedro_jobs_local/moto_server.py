"""The embedded AWS emulator: a real moto server in its own process on a loopback port.

moto checks a DynamoDB condition and then writes, without a lock, while its server answers
requests on many threads: two conditional writes racing for one item could both succeed,
which real DynamoDB never allows. The server here serialises DynamoDB requests (SQS long
polls still run concurrently), so the emulator keeps DynamoDB's atomicity.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class MotoServer:
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        if not self.port:
            self.port = free_port(self.host)
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            [
                sys.executable,
                "-m",
                "kedro_jobs_local.moto_server",
                "-H",
                self.host,
                "-p",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1),  # noqa: S310
            ):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not start on {self.endpoint_url}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running_moto(host: str = "127.0.0.1", port: int = 0) -> Iterator[MotoServer]:
    server = MotoServer(host, port).start()
    try:
        yield server
    finally:
        server.stop()


class AtomicDynamoDB:
    """WSGI middleware: one DynamoDB request at a time (each is atomic on AWS)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with self.lock:
                return list(self.app(environ, start_response))
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


def _exit_with_parent(parent: int) -> None:
    # A server nobody can stop is a leak: go when the process that started it has gone.
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description="moto server with atomic DynamoDB writes")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--parent", type=int, help="exit when this process is gone")
    args = parser.parse_args(argv)
    if args.parent:
        threading.Thread(target=_exit_with_parent, args=(args.parent,), daemon=True).start()
    app = AtomicDynamoDB(DomainDispatcherApplication(create_backend_app))
    # moto's imports (every service model) live as long as the server: out of the
    # collector's sight, its full collections walk only the emulated data (they paused
    # requests for tens of ms).
    gc.collect()
    gc.freeze()
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
