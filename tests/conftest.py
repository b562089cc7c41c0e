"""Shared fixtures: a real moto server on a random loopback port, with the table, queues and
bucket created from template.yaml (never retyped here)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Before anything imports boto3: fake credentials, a region, no Kedro telemetry, no X-Ray.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "KedroJobsTests",
        "POWERTOOLS_DEV": "false",
    }
)
for _var in [v for v in os.environ if v.startswith("AWS_ENDPOINT_URL")]:
    del os.environ[_var]

from kedro_jobs_local.moto_server import MotoServer  # noqa: E402
from kedro_jobs_local.resources import LocalResources, create_resources, reset_resources  # noqa: E402
from tests.support.containers import reset_singletons  # noqa: E402

# Tests that share one stack (a module- or session-scoped fixture) run on one pytest-xdist
# worker, which then starts it once; every other test is scheduled on its own. (xdist's
# `xdist_group` mark has no effect under pytest 9: xdist renames a node id pytest no longer
# reads.)
SHARED_STACKS = {
    "tests/e2e/test_cli.py": "e2e local_stack",
    "tests/e2e/test_local_stack.py": "e2e local_stack",
    # Tests on the session's stack: on its worker, no stack of their own.
    "tests/e2e/test_cli_rerun.py": "e2e local_stack",
    "tests/e2e/test_readme.py": "e2e local_stack",
    "tests/e2e/test_schedules.py": "e2e local_stack",
    "tests/e2e/test_faults.py": "test_faults.py counting_stack",
    "tests/e2e/test_web_page.py": "test_web_page.py stack",
    "tests/e2e/test_fan_out.py": "test_fan_out.py fan_stack",
    # The image builds share one cache of Docker layers (the service's dependencies).
    "tests/infra/test_image.py": "test_image.py layers",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Schemathesis names each API operation's test (``test_x[GET /api/v1/jobs]``) but, under
    pytest 9, gives them all the test function's node id: pytest-xdist, which schedules by node
    id, would run one of them. Each gets the node id its name says."""
    from _pytest.nodeid import coerce_node_id  # pytest 9 builds node ids as NodeId objects

    for item in items:
        if isinstance(item, pytest.Function) and not item.nodeid.endswith("::" + item.name):
            item._id = coerce_node_id(f"{item.nodeid.rsplit('::', 1)[0]}::{item.name}")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` (what `make test` uses): xdist's load scheduling, by work units of
    one test, or of the tests on one shared stack (SHARED_STACKS), largest first."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedStackScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return SHARED_STACKS.get(nodeid.split("::", 1)[0], nodeid)

    return SharedStackScheduling(config, log)


# The shortest timeout the template allows.
TEST_PARAMETERS = {"ConsumerTimeout": "60"}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack(moto_server: MotoServer) -> Iterator[LocalResources]:
    """The template's resources on the moto server, and the function's environment pointing
    the code at them (as Lambda would see it)."""
    resources = create_resources(
        endpoint_url=moto_server.endpoint_url, parameter_overrides=TEST_PARAMETERS
    )
    saved = dict(os.environ)
    os.environ["AWS_ENDPOINT_URL"] = moto_server.endpoint_url
    os.environ.update(resources.function_env("ConsumerFunction"))
    os.environ.update(resources.function_env("ApiFunction"))
    reset_singletons()
    yield resources
    os.environ.clear()
    os.environ.update(saved)
    reset_singletons()


@pytest.fixture
def fresh_functions() -> Iterator[Callable[[], None]]:
    """A fresh Lambda container for the test: the functions' per-container singletons
    (settings, AWS clients, the consumer, the dead-letter store, the sweeper) are forgotten
    before and after it. Call the fixture's value to forget them again after changing the
    environment they are built from."""
    reset_singletons()
    yield reset_singletons
    reset_singletons()


@pytest.fixture
def clean_stack(
    stack: LocalResources, moto_server: MotoServer, fresh_functions: Callable[[], None]
) -> LocalResources:
    """Empty table, queues and bucket for one test, in a fresh container."""
    reset_resources(stack, endpoint_url=moto_server.endpoint_url)
    return stack
