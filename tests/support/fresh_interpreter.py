"""Import modules in a fresh interpreter (a cold start) and report what that loaded: every
module in sys.modules, and every AWS client created while importing."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import json, sys
import botocore.client
created = []
original = botocore.client.ClientCreator.create_client
def spy(self, service_name, *a, **k):
    created.append(service_name)
    return original(self, service_name, *a, **k)
botocore.client.ClientCreator.create_client = spy
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps({"modules": sorted(sys.modules), "clients": created}))
"""


def import_in_fresh_interpreter(*modules: str, **env: str) -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules],
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", **env},
    )
    result: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def top_level(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}
