"""Condition and update expressions, built from parts: attribute names and values become
placeholders when one request is rendered, each value encoded by the item schema.

Every condition on a job's status comes from here: ``moving`` (a write that changes the
status, checked against the transition table of states.py) or ``is_status`` (one that
does not)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kedro_jobs.core.states import JobStatus, can_transition
from kedro_jobs.core.store.items import AttributeValue, encode


class Placeholders:
    """The ExpressionAttributeNames and -Values of one request."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValue] = {}

    def name(self, attr: str) -> str:
        placeholder = f"#{attr}"
        self.names[placeholder] = attr
        return placeholder

    def value(self, attr: str, value: Any) -> str:
        encoded = encode(attr, value)
        for placeholder, known in self.values.items():
            if known == encoded:
                return placeholder
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = encoded
        return placeholder

    def update(self, set_values: dict[str, Any], remove: tuple[str, ...]) -> str:
        """An UpdateExpression that sets ``set_values`` and removes ``remove``."""
        expression = "SET " + ", ".join(
            f"{self.name(attr)} = {self.value(attr, value)}" for attr, value in set_values.items()
        )
        if remove:
            expression += " REMOVE " + ", ".join(self.name(attr) for attr in remove)
        return expression


@dataclass(frozen=True)
class Cond:
    """A condition expression, rendered for one request; combined with ``&`` and ``|``."""

    render: Callable[[Placeholders], str]

    def __and__(self, other: Cond) -> Cond:
        return Cond(lambda p: f"{self.render(p)} AND {other.render(p)}")

    def __or__(self, other: Cond) -> Cond:
        return Cond(lambda p: f"({self.render(p)} OR {other.render(p)})")


def eq(attr: str, value: Any) -> Cond:
    return Cond(lambda p: f"{p.name(attr)} = {p.value(attr, value)}")


def before(attr: str, value: float) -> Cond:
    return Cond(lambda p: f"{p.name(attr)} < {p.value(attr, value)}")


def after(attr: str, value: float) -> Cond:
    return Cond(lambda p: f"{p.name(attr)} > {p.value(attr, value)}")


def exists(attr: str) -> Cond:
    return Cond(lambda p: f"attribute_exists({p.name(attr)})")


def missing(attr: str) -> Cond:
    return Cond(lambda p: f"attribute_not_exists({p.name(attr)})")


def is_status(status: JobStatus) -> Cond:
    """The job is in ``status`` (a write that leaves it there)."""
    return eq("status", status)


def moving(source: JobStatus, target: JobStatus) -> Cond:
    """The condition of a write that moves a job from ``source`` to ``target``: one of the
    transitions of states.TRANSITIONS (anything else is a mistake in the store)."""
    if not can_transition(source, target):
        raise ValueError(f"no transition {source} -> {target} in states.TRANSITIONS")
    return eq("status", source)
