"""Print the requirement lines of a Python project directory, for one `pip install -r`.

    python project_requirements.py DIR [--extra NAME]... [--requirements FILE]

Reads `[project].dependencies` of DIR/pyproject.toml (or the files setuptools reads them from
when they are dynamic), the requested `[project.optional-dependencies]` extras, and
DIR/requirements.txt and DIR/src/requirements.txt when present. `--requirements FILE` (relative
to DIR; an empty value means none) replaces all of those with one file the user chose, such as a
slimmer list without notebook tools. `-r` includes are inlined, so the output stands alone.

The consumer image runs this with the base image's python (stdlib only: 3.11+ for tomllib) for
the service and for the Kedro project, and installs both lists in one pip resolution. The tests
run the same file, so what the image installs is decided here only.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

# What pip's requirement-file parser treats as a comment: a '#' at the start or after a space.
_COMMENT = re.compile(r"(^|\s+)#.*$")
_REQUIREMENT_FILES = ("requirements.txt", "src/requirements.txt")


class RequirementsError(Exception):
    """A dependency declaration the image cannot install; the message says which and why."""


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _logical_lines(path: Path) -> Iterator[str]:
    """Lines as pip reads them: continuations joined, comments and blank lines dropped."""
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        pending = ""
        if line:
            yield line
    if pending.strip():
        yield pending.strip()


def _local_target(line: str, base: Path) -> Path | None:
    """The file or directory a requirement points at on disk, if it names a local one."""
    direct = re.match(r"[A-Za-z0-9._-]+\s*(\[[^\]]*\])?\s*@\s*(\S+)", line)
    target = direct[2] if direct else line.split(";", 1)[0].strip()
    if target.startswith("file:"):
        return (base / re.sub(r"^file:(//)?", "", target)).resolve()
    if target.startswith((".", "/")):
        return (base / target).resolve()
    return None


def _option(line: str, *names: str) -> str | None:
    """The value of a `-x value`, `--xx value` or `--xx=value` line if it is one of `names`."""
    for name in names:
        for separator in (" ", "="):
            if line.startswith(name + separator):
                return line[len(name) + 1 :].strip()
    return None


class _Collector:
    """Requirement lines in order, each once, with `# source` comments pip ignores."""

    def __init__(self, project: Path) -> None:
        self.project = project.resolve()
        # The project's own package is not installed: the consumer imports it from src/, next
        # to conf/ (and `-e .` in a requirements file would be an editable install).
        self.own = {self.project, self.project / "src"}
        self.lines: list[str] = []
        self.files: set[Path] = set()

    def label(self, path: Path) -> str:
        return (
            str(path.relative_to(self.project)) if path.is_relative_to(self.project) else str(path)
        )

    def requirement(self, line: str, base: Path, source: str) -> None:
        local = _local_target(line, base)
        if local in self.own:
            print(f"{source}: skipping {line!r}, the project itself", file=sys.stderr)
        elif local is not None:
            raise RequirementsError(
                f"{source}: {line!r} is a local path; the image installs from package indexes "
                "only: publish it, or move its code under the project's src/"
            )
        elif line not in self.lines:
            self.lines.append(line)

    def file(self, path: Path) -> None:
        path = path.resolve()
        label = self.label(path)
        if path in self.files:
            return
        if not path.is_file():
            raise RequirementsError(f"{label}: no such requirements file")
        self.files.add(path)
        self.lines.append(f"# {label}")
        for line in _logical_lines(path):
            if (included := _option(line, "-r", "--requirement")) is not None:
                self.file(path.parent / included)
                self.lines.append(f"# {label}")
            elif _option(line, "-c", "--constraint") is not None:
                raise RequirementsError(
                    f"{label}: {line!r}: constraints files are not supported; "
                    "pin the versions in the requirements instead"
                )
            elif (editable := _option(line, "-e", "--editable")) is not None:
                if "://" in editable or (path.parent / editable).resolve() not in self.own:
                    raise RequirementsError(
                        f"{label}: {line!r}: an editable install cannot go into an image"
                    )
                print(f"{label}: skipping {line!r}, the project itself", file=sys.stderr)
            elif line.startswith("-"):
                self.lines.append(line)  # pip options (index URLs, --pre, ...) apply as written
            else:
                self.requirement(line, path.parent, label)


def requirement_lines(
    project: Path, extras: tuple[str, ...] = (), requirements: str = ""
) -> list[str]:
    """The lines of one requirements file installing what `project` declares it needs."""
    collector = _Collector(project)
    if requirements:
        collector.file(project / requirements)
        return collector.lines
    pyproject = project / "pyproject.toml"
    if pyproject.is_file():
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        metadata = data.get("project", {})
        name = _normalise(metadata.get("name", ""))
        if "dependencies" in metadata.get("dynamic", []):
            declared = data.get("tool", {}).get("setuptools", {}).get("dynamic", {})
            files = declared.get("dependencies", {}).get("file", [])
            for file in [files] if isinstance(files, str) else files:
                collector.file(project / file)
        else:
            collector.lines.append("# pyproject.toml [project].dependencies")
            for line in metadata.get("dependencies", []):
                collector.requirement(line, project, "pyproject.toml")
        optional = metadata.get("optional-dependencies", {})
        wanted, done = list(extras), set()
        while wanted:
            extra = wanted.pop()
            if extra in done:
                continue
            if extra not in optional:
                raise RequirementsError(f"pyproject.toml: no extra {extra!r}: {sorted(optional)}")
            done.add(extra)
            collector.lines.append(f"# pyproject.toml [project.optional-dependencies].{extra}")
            for line in optional[extra]:
                self_reference = re.match(r"\s*([A-Za-z0-9._-]+)\s*\[([^\]]*)\]\s*$", line)
                if self_reference and _normalise(self_reference[1]) == name:
                    wanted.extend(e.strip() for e in self_reference[2].split(","))
                else:
                    collector.requirement(line, project, "pyproject.toml")
    elif extras:
        raise RequirementsError(f"{project}: extras {extras} asked for, but no pyproject.toml")
    for file in _REQUIREMENT_FILES:
        if (project / file).is_file():
            collector.file(project / file)
    return collector.lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path, help="the project directory")
    parser.add_argument("--extra", action="append", default=[], help="an optional extra")
    parser.add_argument(
        "--requirements",
        default="",
        help="a requirements file, relative to the project, to install instead (empty: none)",
    )
    args = parser.parse_args(argv)
    try:
        lines = requirement_lines(args.project, tuple(args.extra), args.requirements)
    except RequirementsError as error:
        print(f"{args.project}: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
