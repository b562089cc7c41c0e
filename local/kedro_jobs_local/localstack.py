"""LocalStack without Docker: `localstack-core` (the last open release, 2026.3.0, which needs
Python 3.13) run as a plain process on a loopback port, with SQS and S3 (by default).

`make test-localstack` installs it into `.tools/localstack` and runs the end-to-end suites
with SQS, S3 and Step Functions here (dev_stack.py) and DynamoDB on the embedded moto:
LocalStack's DynamoDB downloads Java and DynamoDB Local at run time, which this machine
cannot.

    python -m kedro_jobs_local.localstack --python .tools/localstack/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kedro_jobs_local.moto_server import free_port

# Run LocalStack's entry point in an interpreter that first asks to be stopped with its
# parent (LocalStack cannot be told so itself).
_LAUNCH = (
    "import ctypes, os, runpy, signal, sys\n"
    "if sys.platform == 'linux': ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
    "sys.argv = ['localstack']\n"
    "runpy.run_module('localstack.runtime.main', run_name='__main__')\n"
)


@dataclass
class LocalStackServer:
    python: str  # an interpreter with localstack-core installed
    host: str = "127.0.0.1"
    port: int = 0
    services: str = "sqs,s3"
    root: Path | None = None  # its files (default: a temporary folder, removed at stop)
    log: IO[bytes] | int | None = subprocess.DEVNULL
    process: subprocess.Popen[bytes] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 120.0) -> LocalStackServer:
        if not self.port:
            self.port = free_port(self.host)
        if self.root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="localstack-")
            self.root = Path(self._tmp.name)
        env = {
            **os.environ,
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(self.root),
            # hypercorn binds the address given; LocalStack's default server binds them all.
            "GATEWAY_LISTEN": f"{self.host}:{self.port}",
            # The host in the URLs it hands out (queue URLs): this one, not a DNS name.
            "LOCALSTACK_HOST": f"{self.host}:{self.port}",
            "GATEWAY_SERVER": "hypercorn",
            "SERVICES": self.services,
            "SQS_ENDPOINT_STRATEGY": "path",
            "DNS_ADDRESS": "0",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",  # no analytics over the network
        }
        self.process = subprocess.Popen(  # noqa: S603 - the given interpreter, fixed code
            [self.python, "-c", _LAUNCH, str(os.getpid())],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log is not None else None,
            start_new_session=True,
        )
        wanted = set(self.services.split(","))
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"LocalStack exited with {self.process.returncode}")
            if wanted <= self._available():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"LocalStack did not start on {self.endpoint_url}")
            time.sleep(0.2)

    def _available(self) -> set[str]:
        try:
            with urllib.request.urlopen(  # noqa: S310 - our own loopback URL
                f"{self.endpoint_url}/_localstack/health", timeout=2
            ) as resp:
                services = json.load(resp).get("services", {})
        except (OSError, ValueError):
            return set()
        return {name for name, state in services.items() if state in {"available", "running"}}

    def stop(self) -> None:
        """SIGTERM, then SIGKILL: once it has served requests, its shutdown can hang (seen
        with 2026.3.0), and nothing of it is worth keeping."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=".tools/localstack/bin/python")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args(argv)
    server = LocalStackServer(args.python, port=args.port, log=None).start()
    sys.stderr.write(
        f"LocalStack (SQS, S3) on {server.endpoint_url}: run `make dev` against it with\n"
        f"  AWS_ENDPOINT_URL_SQS={server.endpoint_url} AWS_ENDPOINT_URL_S3={server.endpoint_url}"
        " make dev\nCtrl-C stops it.\n"
    )
    try:
        assert server.process is not None
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
