"""The functions' per-container singletons, made afresh as a new Lambda container would.

Function code builds its settings, AWS clients and handler objects once per container, on
first use, with ``functools.cache`` / ``lru_cache`` at module level (``get_settings``,
``core.aws.client``, the consumer handler's ``consumer()``, the dead-letter handler's
``store()``, the sweeper handler's ``sweeper()``...). A test that changes the environment
those read asks for a fresh container through the ``fresh_functions`` fixture
(tests/conftest.py), or calls ``reset_singletons()`` after changing it: no test names a
cache, and a singleton added or moved in functions/ is reset without a test knowing it.

The API's services are not a cache: they are injected (``app.state.services``), by
``ApiCall.configure`` in tests/integration/conftest.py or by the test that serves the app.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

PACKAGE = "kedro_jobs"


def _caches(module: ModuleType) -> Iterator[Any]:
    """The module-level functools caches ``module`` defines (not those it imports)."""
    for value in list(vars(module).values()):
        if callable(getattr(value, "cache_clear", None)) and (
            getattr(value, "__module__", None) == module.__name__
        ):
            yield value


def reset_singletons() -> None:
    """Forget every per-container singleton of the modules of functions/ imported so far:
    the next use builds it again from the environment. A module not imported yet holds
    none, and is not imported to clear it."""
    for name, module in list(sys.modules.items()):
        if module is None or not (name == PACKAGE or name.startswith(PACKAGE + ".")):
            continue
        for cached in _caches(module):
            cached.cache_clear()
