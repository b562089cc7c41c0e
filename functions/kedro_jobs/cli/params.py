"""`kedro run`'s spelling of parameters and run options, turned into the API's JSON.

`--params "a.b=1,c=x"` means ``{"a": {"b": 1}, "c": "x"}``: keys are dotted paths, values are
read as YAML scalars the way Kedro reads them (numbers, booleans, null, strings).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any


class UsageError(ValueError):
    """A command-line value that cannot be understood; the message says which and why."""


@cache
def _scalar_loader() -> Any:
    """YAML 1.1 as Kedro's command line reads it (through OmegaConf): dates stay strings, and
    ``1e3`` is a float even without a dot. Built on first use: only a command given values
    to read imports PyYAML (every command's start would pay ~10 ms for it)."""
    import yaml

    class ScalarLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
        pass

    ScalarLoader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    ScalarLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
            |\.[0-9_]+(?:[eE][-+][0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
            re.VERBOSE,
        ),
        list("-+0123456789."),
    )
    return ScalarLoader


def parse_value(text: str) -> Any:
    import yaml

    try:
        # A SafeLoader subclass: only the safe constructors, never arbitrary objects.
        return yaml.load(text, Loader=_scalar_loader())  # noqa: S506  # nosec B506
    except yaml.YAMLError:
        return text.strip()


def parse_params(text: str) -> dict[str, Any]:
    """``key=value,other.key=value`` -> a nested dict, as `kedro run --params` reads it."""
    params: dict[str, Any] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, equals, raw = item.partition("=")
        key = key.strip()
        if not equals:
            raise UsageError(f"--params: {item!r} must be key=value")
        if not key or any(not part for part in key.split(".")):
            raise UsageError(f"--params: {item!r} has an empty key")
        _set_path(params, key.split("."), parse_value(raw), item)
    return params


def _set_path(target: dict[str, Any], path: list[str], value: Any, item: str) -> None:
    for part in path[:-1]:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"--params: {item!r} goes inside {part!r}, which is a value")
        target = child
    target[path[-1]] = value


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, nested dicts merged (repeated --params add up)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_list(text: str) -> list[str]:
    """Comma-separated names; a comma inside brackets (Kedro's generated node names,
    ``func([a,b]) -> [c]``) does not split."""
    items: list[str] = []
    depth, current = 0, ""
    for char in text + ",":
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth <= 0:
            if current.strip():
                items.append(current.strip())
            current = ""
        else:
            current += char
    return items


def parse_load_versions(text: str) -> dict[str, str]:
    """``dataset:version,other:version`` (`kedro run --load-versions`)."""
    versions: dict[str, str] = {}
    for item in parse_list(text):
        name, colon, version = item.partition(":")
        if not colon or not name.strip() or not version.strip():
            raise UsageError(f"--load-versions: {item!r} must be dataset:version")
        versions[name.strip()] = version.strip()
    return versions
