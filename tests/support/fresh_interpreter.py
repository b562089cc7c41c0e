"""Import modules in a fresh interpreter (a cold start) and report what that loaded: every
module in sys.modules, and every AWS client created while importing.

Each probe is a child forked from one waiting interpreter per test process, which has loaded
only the spy on client creation and a few third-party libraries no rule is about (boto3,
pydantic): a probe then costs its own modules' imports, not a whole interpreter's start
(~0.4 s of CPU each). Preloading can only add modules to what a probe reports, never hide
one, and the modules probed are imported in the child, under its own environment."""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
import threading

_ZYGOTE = """
import importlib, json, os, sys, traceback
import botocore.client
import boto3, pydantic, pydantic_settings  # no rule is about them; every probe loads them
created = []
original = botocore.client.ClientCreator.create_client
def spy(self, service_name, *a, **k):
    created.append(service_name)
    return original(self, service_name, *a, **k)
botocore.client.ClientCreator.create_client = spy
for line in sys.stdin:
    request = json.loads(line)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.dup2(2, 1)  # what an import prints must not mix with the answers
        os.environ.update(request["env"])
        try:
            for name in request["modules"]:
                importlib.import_module(name)
            answer = {"modules": sorted(sys.modules), "clients": created}
        except BaseException:
            answer = {"error": traceback.format_exc()}
        with os.fdopen(write, "w") as out:
            out.write(json.dumps(answer))
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as reply:
        answer = reply.read()
    os.waitpid(pid, 0)
    sys.stdout.write(answer + "\\n")  # json.dumps writes one line
    sys.stdout.flush()
"""

_BASE_ENV = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
_lock = threading.Lock()
_zygote: subprocess.Popen[str] | None = None


def _started() -> subprocess.Popen[str]:
    global _zygote
    if _zygote is None or _zygote.poll() is not None:
        _zygote = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_BASE_ENV,
        )
        atexit.register(_stop, _zygote)
    return _zygote


def _stop(zygote: subprocess.Popen[str]) -> None:
    if zygote.stdin:
        zygote.stdin.close()  # it ends at the end of its input
    zygote.wait(timeout=30)


def import_in_fresh_interpreter(*modules: str, **env: str) -> dict[str, list[str]]:
    with _lock:
        zygote = _started()
        assert zygote.stdin and zygote.stdout
        zygote.stdin.write(json.dumps({"modules": modules, "env": env}) + "\n")
        zygote.stdin.flush()
        line = zygote.stdout.readline()
    assert line, "the probing interpreter ended"
    result: dict[str, list[str]] = json.loads(line)
    assert "error" not in result, result["error"]
    return result


def top_level(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}
