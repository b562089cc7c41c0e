"""The processes a test started, found in /proc, so "nothing left behind" is counted."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    started: int  # clock ticks after boot: tells a process from a later one with its pid
    command: str

    def running(self) -> bool:
        found = _read(self.pid)
        return found is not None and found.started == self.started and not _zombie(self.pid)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...


def _zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is None or fields[0] in {"Z", "X"}


def _read(pid: int) -> Proc | None:
    fields = _stat_fields(pid)
    if fields is None:
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        command = ""
    return Proc(pid, int(fields[1]), int(fields[19]), command.strip())


def descendants(pid: int) -> list[Proc]:
    """Every live process below `pid` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            proc = _read(child)
            if proc is not None and not _zombie(child):
                found.append(proc)
                todo.append(child)
    return found


def left_running(procs: list[Proc]) -> list[Proc]:
    return [p for p in procs if p.running()]
