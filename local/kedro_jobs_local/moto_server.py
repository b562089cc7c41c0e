"""The embedded AWS emulator: a real moto server in its own process on a loopback port.

moto checks a DynamoDB condition and then writes, without a lock, while its server answers
requests on many threads: two conditional writes racing for one item could both succeed,
which real DynamoDB never allows. The server here serialises DynamoDB requests (SQS long
polls still run concurrently), so the emulator keeps DynamoDB's atomicity.

With `--state-dir`, its DynamoDB, SQS and S3 state is kept in that folder (see state.py):
restored at start, journaled as it changes, saved whole when it stops.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
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
    # Where its state is kept (none: in memory only, gone when it stops).
    state_dir: Path | None = None
    # Its output: discarded by default, inherited (None) under `make dev`.
    output: int | None = subprocess.DEVNULL

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        if not self.port:
            self.port = free_port(self.host)
        state = ["--state-dir", str(self.state_dir)] if self.state_dir else []
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            [
                sys.executable, "-m", "kedro_jobs_local.moto_server",
                "-H", self.host, "-p", str(self.port), "--parent", str(os.getpid()), *state,
            ],
            stdout=self.output,
            stderr=self.output,
            # Its own process group: a Ctrl-C meant for `make dev` reaches the supervisor,
            # which stops the emulator last, after the processes that write to it.
            start_new_session=True,
        )  # fmt: skip
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

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM (it saves its state, if kept), then SIGKILL if it has not gone by then."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout or (120 if self.state_dir else 10))
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


def _batch_models_on_demand() -> None:
    """moto's state machine interpreter, loaded by the first Step Functions request (every
    start creates the fan-out state machine), imports ``moto.batch.utils`` for one enum; the
    ``moto.batch`` package's ``__init__`` imports Batch's models, and they all of EC2's
    (instance types, regions): ~1 CPU-s of a ~2 s emulator start, for a service the stack
    never calls. Here the package is set up without running its ``__init__``: its submodules
    import as before, and its one name, ``batch_backends``, loads the models when asked for
    (a Batch request still works)."""
    if "moto.batch" in sys.modules:
        return
    spec = importlib.util.find_spec("moto.batch")
    if spec is None or spec.submodule_search_locations is None:
        return
    package = importlib.util.module_from_spec(spec)

    def models_attribute(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(importlib.import_module("moto.batch.models"), name)

    package.__getattr__ = models_attribute  # type: ignore[method-assign]
    sys.modules["moto.batch"] = package


def main(argv: list[str] | None = None) -> None:
    from kedro_jobs_local.lifetime import exit_with_parent, started, starting

    starting()
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    from kedro_jobs_local.state import StateKeeper
    from kedro_jobs_local.state_snapshot import StateError

    parser = argparse.ArgumentParser(description="moto server with atomic DynamoDB writes")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--parent", type=int, help="stop when this process is gone")
    parser.add_argument("--state-dir", type=Path, help="keep the state in this folder")
    parser.add_argument("--snapshot-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    # Step Functions executions (fan-out jobs) call SQS back through this server: moto's
    # interpreter finds it by MOTO_PORT, and runs state machines only when its config says so.
    os.environ["MOTO_PORT"] = str(args.port)
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    _batch_models_on_demand()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("kedro_jobs_local.moto")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request drowns the rest
    if args.parent:
        # SIGTERM rather than SIGKILL: even when its parent is killed, it saves its state.
        exit_with_parent(args.parent, signal.SIGTERM)
    keeper = StateKeeper(
        DomainDispatcherApplication(create_backend_app),
        folder=args.state_dir,
        snapshot_seconds=args.snapshot_seconds,
    )
    if args.state_dir:
        try:
            log.info("%s", keeper.restore())
        except StateError as exc:
            log.error("%s. Start afresh with `make dev FRESH=1` (the old state is kept "
                      "aside), or use the moto version that wrote it.", exc)  # fmt: skip
            raise SystemExit(3) from exc
    # moto's imports (every service model) and the restored state live as long as the
    # server: out of the collector's sight, its full collections walk only new objects
    # (they paused requests for tens of ms). The restore's garbage goes first.
    gc.collect()
    started()
    server = make_server(
        args.host, args.port, keeper, threaded=True, request_handler=MotoRequestHandler
    )

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    if args.state_dir:
        keeper.start_snapshots()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        keeper.close()


if __name__ == "__main__":
    main()
