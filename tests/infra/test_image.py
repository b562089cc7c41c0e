"""The consumer's container image, without Docker: run functions/consumer.Dockerfile's own
instructions on this machine (each stage's file system in a temporary folder, COPY through
.dockerignore, RUN through sh with a python that has only the stdlib and pip, as the base image's),
then import and invoke the handler from a clean interpreter that sees only the task root, against
the moto stack."""

from __future__ import annotations

import ensurepip
import hashlib
import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from kedro_jobs_local.lambda_events import sqs_event
from kedro_jobs_local.moto_server import MotoServer
from kedro_jobs_local.resources import LocalResources

from .conftest import ROOT

DOCKERFILE = ROOT / "functions" / "consumer.Dockerfile"
BASE_IMAGE = "public.ecr.aws/lambda/python:3.11"
TASK_ROOT = "/var/task"  # the base image's LAMBDA_TASK_ROOT and WORKDIR


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    lines = (line.strip() for line in joined.splitlines())
    return [
        (op.upper(), rest.strip())
        for op, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


class DockerIgnore:
    """.dockerignore as Docker reads it: paths relative to the context, `*`, `?`, `[...]` within
    one path segment, `**` across segments, a pattern excluding a folder excludes what is in it,
    `!` re-includes, the last matching line wins."""

    def __init__(self, text: str) -> None:
        self.patterns: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
            self.patterns.append((negated, re.compile(self._regex(pattern))))
        self.has_exceptions = any(negated for negated, _ in self.patterns)

    @staticmethod
    def _regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            char = pattern[i]
            if pattern.startswith("**/", i):
                out, i = out + "(.*/)?", i + 3
                continue
            if pattern.startswith("**", i):
                out, i = out + ".*", i + 2
                continue
            if char == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i : end + 1], end + 1
                continue
            out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
            i += 1
        return out

    def __call__(self, path: str) -> bool:
        parts = path.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for negated, regex in self.patterns:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                excluded = not negated
        return excluded


class BuildFailed(Exception):
    pass


class Layers:
    """Docker's build cache, for the builds of one test module: a RUN reached by the same
    instructions, with the same build arguments, from files of the same content, is not run
    again; its stage's files are those the first build left (hard links: pip, compileall and
    venv replace files, they never write into one)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved: dict[str, Path] = {}

    def restore(self, stage: Stage) -> bool:
        saved = self.saved.get(stage.key)
        if saved is None:
            return False
        shutil.rmtree(stage.root)
        shutil.copytree(saved, stage.root, symlinks=True, copy_function=os.link)
        return True

    def save(self, stage: Stage) -> None:
        saved = self.folder / stage.key
        shutil.copytree(stage.root, saved, symlinks=True, copy_function=os.link)
        self.saved[stage.key] = saved


@dataclass
class Stage:
    root: Path  # this stage's "/"
    name: str
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=lambda: {"LAMBDA_TASK_ROOT": TASK_ROOT})
    workdir: str = TASK_ROOT
    cmd: list[str] = field(default_factory=list)
    key: str = ""  # what Docker's build cache would know this stage's files by, so far
    cached: list[str] = field(default_factory=list)  # this build's RUNs taken from the cache

    def add_to_key(self, *parts: object) -> None:
        self.key = hashlib.sha256(repr((self.key, *parts)).encode()).hexdigest()

    def host(self, path: str) -> Path:
        return self.root / posixpath.normpath(posixpath.join(self.workdir, path)).lstrip("/")

    @property
    def task_root(self) -> Path:
        return self.host(TASK_ROOT)

    def host_env(self) -> dict[str, str]:
        """This stage's environment with its paths mapped to this machine."""
        return {
            name: str(self.host(value)) if value.startswith(TASK_ROOT) else value
            for name, value in self.env.items()
        }


def _substitute(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables[m[1] or m[2]], text)


def _copy(
    source: Path,
    relative: str,
    dest: Path,
    ignored: DockerIgnore | None,
    link: bool = False,
    digest: Any = None,
) -> None:
    """`source` (at `relative` in the context) to `dest`, leaving out what .dockerignore does.
    `link`: hard links instead of copies, for a stage's files that nothing writes to again (the
    same bytes and times as a copy, without writing the installed packages a second time).
    `digest` (a hashlib object) takes in what was copied: names and contents; for a large file,
    or a linked one in a folder (a stage's installed packages), its size, time and inode instead:
    never the same for different contents, and reading them would cost more than it saves."""
    if not source.is_dir():
        if digest is not None:
            info = source.stat()
            read = info.st_size <= 65536 and not (link and relative)
            content = source.read_bytes() if read else (info.st_mtime_ns, info.st_ino)
            digest.update(repr((relative, info.st_size, content)).encode())
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            if not link:
                raise OSError
            os.link(source, dest)
        except OSError:  # not asked, or another file system
            shutil.copy2(source, dest)
        return
    if ignored is None or not relative or not ignored(relative):
        dest.mkdir(parents=True, exist_ok=True)
    for child in sorted(source.iterdir()):
        inner = f"{relative}/{child.name}" if relative else child.name
        # Inside a left-out folder, a `!` line may still take some files back.
        if ignored is None or not ignored(inner) or (child.is_dir() and ignored.has_exceptions):
            _copy(child, inner, dest / child.name, ignored, link, digest)


def build(
    context: Path,
    into: Path,
    python: Path,
    build_args: dict[str, str] | None = None,
    target: str | None = None,
    layers: Layers | None = None,
) -> Stage:
    """Run the Dockerfile's instructions with `context` as the build context; returns the last
    stage (or the stage named `target`). A failing RUN raises BuildFailed with its output.
    With `layers`, a RUN that Docker's cache would skip takes its files from there."""
    given = build_args or {}
    ignored = DockerIgnore((context / ".dockerignore").read_text())
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for op, rest in instructions(DOCKERFILE.read_text()):
        stage = stages[-1] if stages else None
        if op == "FROM":
            if stage is not None and stage.name == target:
                break
            image, _, name = rest.partition(" AS ")
            assert image == BASE_IMAGE, image
            stage = Stage(
                root=into / f"stage-{len(stages)}",
                name=name.strip(),
                cached=stage.cached if stage is not None else [],
            )
            stage.task_root.mkdir(parents=True)
            stage.add_to_key(image, str(python))  # the base image: this python
            stages.append(stage)
        elif op == "ARG":
            name, has_default, default = rest.partition("=")
            if stage is None:
                global_args[name] = given.get(name, default.strip('"'))
            elif has_default:
                stage.args[name] = given.get(name, default.strip('"'))
            else:
                stage.args[name] = given.get(name, global_args.get(name, ""))
        elif stage is None:
            raise AssertionError(f"{op} before FROM")
        elif op == "WORKDIR":
            stage.workdir = posixpath.join(stage.workdir, _substitute(rest, stage.env))
            stage.host(".").mkdir(parents=True, exist_ok=True)
            stage.add_to_key(op, stage.workdir)
        elif op == "COPY":
            words = _substitute(rest, {**stage.env, **stage.args}).split()
            origin = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            *sources, dest = [w for w in words if not w.startswith("--")]
            into_folder = dest.endswith("/") or len(sources) > 1
            copied = hashlib.sha256()
            for source in sources:
                if origin is None:
                    path, relative, rules = context / source, posixpath.normpath(source), ignored
                else:
                    path = next(s for s in stages if s.name == origin).host(source)
                    relative, rules = ".", None
                to = stage.host(dest)
                if into_folder and not path.is_dir():
                    to = to / path.name
                # From a stage: that stage is done, so its files can be linked, not copied.
                _copy(
                    path, "" if relative == "." else relative, to, rules, origin is not None, copied
                )
            stage.add_to_key(op, words, copied.hexdigest())
        elif op == "RUN":
            # Only paths this emulation maps: the task root's variable, or relative ones.
            assert not re.search(r"""(^|[\s"'=])/""", rest), f"absolute path in RUN {rest}"
            # What a RUN sees: its command, the stage's build arguments and environment.
            stage.add_to_key(op, rest, sorted(stage.args.items()), sorted(stage.env.items()))
            if layers is not None and layers.restore(stage):
                stage.cached.append(rest)
                continue
            # Docker builds skip pip's cache to keep layers small; here it may save downloads.
            command = rest.replace(" --no-cache-dir", "")
            env = {
                **os.environ,
                **stage.args,
                **stage.host_env(),
                "PATH": f"{python.parent}:{os.environ['PATH']}",
            }
            run = subprocess.run(
                ["sh", "-c", command], cwd=stage.host("."), env=env,
                capture_output=True, text=True, timeout=840, check=False,
            )  # fmt: skip
            if run.returncode != 0:
                raise BuildFailed(f"RUN {rest}\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
            if layers is not None:
                layers.save(stage)
        elif op == "ENV":
            for assignment in shlex.split(rest):
                name, _, value = assignment.partition("=")
                stage.env[name] = _substitute(value, {**stage.env, **stage.args})
        elif op == "CMD":
            stage.cmd = json.loads(rest)
        else:
            raise AssertionError(f"{op} is not emulated here: teach this test what it does")
    assert stages, "no FROM"
    return stages[-1]


@pytest.fixture(scope="module")
def base_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A python with the stdlib and pip only, as in the base image (no packages of this venv
    for pip to see)."""
    venv = tmp_path_factory.mktemp("base-python")
    # The pip that ensurepip bundles, unpacked as a wheel is installed: `python -m venv` would
    # install it (and setuptools) by running pip and compiling both, several CPU-seconds for a
    # pip that the Dockerfile's first RUN replaces anyway.
    bundled = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "venv", *(["--without-pip"] if bundled else []), str(venv)],
        check=True, timeout=120,
    )  # fmt: skip
    python = venv / "bin" / "python"
    if bundled:
        site = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout.strip()  # fmt: skip
        with zipfile.ZipFile(bundled[-1]) as wheel:
            wheel.extractall(site)
    subprocess.run([python, "-c", "import pip"], check=True, timeout=60)
    return python


def test_dockerfile_is_the_lambda_python_image_with_the_consumer_handler() -> None:
    steps = instructions(DOCKERFILE.read_text())
    assert {rest.split()[0] for op, rest in steps if op == "FROM"} == {BASE_IMAGE}
    assert steps[-1] == ("CMD", '["kedro_jobs.consumer.handler.handler"]')
    assert steps[0] == ("ARG", "KEDRO_PROJECT=local/example_project")


# -I: no user site, no PYTHONPATH; -S: no site-packages. Only the stdlib and the task root.
_INVOKE = """
import importlib, json, sys
root, handler = sys.argv[1], sys.argv[3]
sys.path.insert(0, root)
module, _, name = handler.rpartition(".")
h = importlib.import_module(module)
assert h.__file__.startswith(root), h.__file__
for package in ("kedro", "build"):  # build: pypa's, which Kedro needs; once shadowed by staging
    imported = importlib.import_module(package)
    assert imported.__file__ and imported.__file__.startswith(root), imported.__file__
sys.path.append(sys.argv[4])  # after the checks: only the stand-in Lambda context from there
from kedro_jobs_local.lambda_context import LocalContext
print(json.dumps(getattr(h, name)(json.loads(sys.argv[2]), LocalContext(60))))
"""


def _run_job(
    image: Stage, stack: LocalResources, moto_server: MotoServer, pipeline: str, key: str
) -> dict[str, Any]:
    """One SQS record through the image's handler; returns the job's item."""
    env = {
        # The image's ENV (its base image's LAMBDA_TASK_ROOT included), then the function's
        # configuration, which Lambda lays over it.
        **image.host_env(),
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "POWERTOOLS_TRACE_DISABLED": "true",
        **stack.function_env("ConsumerFunction"),
    }
    body = json.dumps({"version": 1, "pipeline_name": pipeline, "idempotency_key": key})
    event = sqs_event(body, message_ids=[key])
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _INVOKE, str(image.task_root), json.dumps(event),
         image.cmd[0], str(ROOT / "local")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"batchItemFailures": []}
    ddb = boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url)
    items = ddb.query(
        TableName=stack.table_name,
        IndexName="by_user_pipeline",
        KeyConditionExpression="user_pipeline = :p",
        ExpressionAttributeValues={":p": {"S": f"anonymous#{pipeline}"}},
    )["Items"]
    assert len(items) == 1, items
    item: dict[str, Any] = ddb.get_item(TableName=stack.table_name, Key={"id": items[0]["id"]})[
        "Item"
    ]
    assert item["status"]["S"] == "completed", item.get("error_message")
    return item


@pytest.fixture(scope="module")
def layers(tmp_path_factory: pytest.TempPathFactory) -> Layers:
    return Layers(tmp_path_factory.mktemp("layers"))


@pytest.fixture(scope="module")
def example_image(
    tmp_path_factory: pytest.TempPathFactory, base_python: Path, layers: Layers
) -> Stage:
    """The image `sam build` makes by default: this repository, the bundled example project."""
    return build(ROOT, tmp_path_factory.mktemp("example-image"), base_python, layers=layers)


@pytest.mark.timeout(900)  # the build's pip install
def test_the_image_task_root_runs_a_job(
    example_image: Stage, stack: LocalResources, moto_server: MotoServer
) -> None:
    item = _run_job(example_image, stack, moto_server, "hello", "image-test")
    assert json.loads(item["results"]["S"]) == {"doubled": 42}
    assert (example_image.task_root / "project" / "conf").is_dir()


# A project that says what it needs only in pyproject.toml: a package the service does not
# install (humanize), and a pin below what the service alone would get (python-dateutil). Its
# pipeline reads a raw input shipped with it and reports what it imported.
_PROJECT_FILES = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "pinned-deps"
        version = "0.1.0"
        dependencies = ["kedro>=1.0,<2", "humanize==4.9.0", "python-dateutil==2.8.2"]

        [tool.kedro]
        package_name = "pinned_deps"
        project_name = "pinned-deps"
        kedro_init_version = "1.7.0"
        source_dir = "src"
        """,
    "conf/base/catalog.yml": """
        distances:
          type: pandas.CSVDataset
          filepath: data/01_raw/distances.csv
        """,
    "conf/local/.gitkeep": "",
    "conf/local/credentials.yml": "dev_s3: {key: secret}\n",
    "data/01_raw/distances.csv": "km\n1000000\n234567\n",
    "data/02_intermediate/left_from_a_local_run.csv": "km\n1\n",
    "data/08_reporting/plot.png": "not a png",
    "notebooks/explore.ipynb": "{}",
    ".venv/pyvenv.cfg": "home = /usr/bin\n",
    ".git/HEAD": "ref: refs/heads/main\n",
    "src/pinned_deps/__init__.py": "",
    "src/pinned_deps/settings.py": "",
    "src/pinned_deps/pipeline_registry.py": """
        from importlib.metadata import version

        import dateutil
        import humanize
        from kedro.pipeline import Pipeline, node


        def describe(distances):
            return {
                "total": humanize.intcomma(int(distances["km"].sum())),
                "humanize": version("humanize"),
                "dateutil": dateutil.__version__,
                "dateutil_metadata": version("python-dateutil"),
            }


        def register_pipelines():
            pipeline = Pipeline([node(describe, "distances", "summary", name="describe")])
            return {"describe_distances": pipeline, "__default__": pipeline}
        """,
}


def _context_with(tmp: Path, project: dict[str, str]) -> Path:
    """A build context: this repository's files the Dockerfile copies, and a project at
    my_project/ with these files."""
    context = tmp / "context"
    context.mkdir()
    for name in (".dockerignore", "pyproject.toml", "README.md", "functions", "infra"):
        (context / name).symlink_to(ROOT / name)
    for name, text in project.items():
        (context / "my_project" / name).parent.mkdir(parents=True, exist_ok=True)
        (context / "my_project" / name).write_text(textwrap.dedent(text).lstrip())
    return context


@pytest.fixture(scope="module")
def pinned_image(
    tmp_path_factory: pytest.TempPathFactory,
    base_python: Path,
    layers: Layers,
    example_image: Stage,
) -> Stage:
    """Built after the default image, as a user's own project would be: Docker's cache has the
    service's layer."""
    tmp = tmp_path_factory.mktemp("pinned-image")
    context = _context_with(tmp, _PROJECT_FILES)
    return build(
        context, tmp / "build", base_python, {"KEDRO_PROJECT": "my_project"}, layers=layers
    )


@pytest.mark.timeout(900)  # the build's pip install
def test_a_project_declaring_its_dependencies_in_pyproject_runs_in_the_image_with_its_pins(
    pinned_image: Stage, stack: LocalResources, moto_server: MotoServer
) -> None:
    item = _run_job(pinned_image, stack, moto_server, "describe_distances", "image-pinned")
    summary = json.loads(item["results"]["S"])["summary"]
    assert summary == {
        "total": "1,234,567",
        "humanize": "4.9.0",
        "dateutil": "2.8.2",
        "dateutil_metadata": "2.8.2",
    }
    root = pinned_image.task_root
    assert [p.name for p in root.glob("python_dateutil-*.dist-info")] == [
        "python_dateutil-2.8.2.dist-info"
    ]
    # Over the service's layer (which has python-dateutil 2.9), from Docker's cache: a project's
    # requirements do not reinstall the service's.
    assert [run for run in pinned_image.cached if "-r service.txt" in run], pinned_image.cached
    # What the project ships and runs with, and nothing it does not.
    project = root / "project"
    assert (project / "data" / "01_raw" / "distances.csv").is_file()
    for left_out in ("data/02_intermediate", "data/08_reporting", "notebooks", ".venv", ".git"):
        assert not (project / left_out).exists(), left_out
    assert not (project / "conf" / "local" / "credentials.yml").exists()
    assert (project / "conf" / "local" / ".gitkeep").exists()
    # Compiled at build time: Lambda's read-only disk cannot cache it at run time.
    handler_module = Path(*pinned_image.cmd[0].split(".")[:-1])
    assert list((root / handler_module.parent / "__pycache__").glob(f"{handler_module.name}.*.pyc"))


def test_a_slimmer_requirements_file_replaces_what_the_project_declares(
    tmp_path: Path, base_python: Path
) -> None:
    project = {
        "pyproject.toml": '[project]\nname = "p"\ndependencies = ["kedro-viz>=6", "pandas"]\n',
        "requirements.txt": "jupyterlab>=3\npandas\n",
        "src/requirements.txt": "notebook\n",
        "requirements-lambda.txt": "# what runs need\n-r requirements-base.txt\nhumanize==4.9.0\n",
        "requirements-base.txt": "pandas<3\n",
    }
    context = _context_with(tmp_path, project)
    for build_args, wanted, unwanted in [
        ({}, ["kedro-viz>=6", "pandas", "jupyterlab>=3", "notebook"], ["humanize==4.9.0"]),
        (
            {"PROJECT_REQUIREMENTS": "requirements-lambda.txt"},
            ["pandas<3", "humanize==4.9.0"],
            ["kedro-viz>=6", "jupyterlab>=3", "notebook"],
        ),
    ]:
        stage = build(
            context,
            tmp_path / f"build-{len(build_args)}",
            base_python,
            {"KEDRO_PROJECT": "my_project", **build_args},
            target="requirements",
        )
        listed = (stage.host("requirements.txt")).read_text().splitlines()
        assert any(re.match(r"kedro\s*[<>=~]", line) for line in listed), listed  # the service's
        assert all(line in listed for line in wanted), listed
        assert not any(line in listed for line in unwanted), listed


@pytest.mark.timeout(300)
def test_a_dependency_conflict_fails_the_build_with_pips_message(
    tmp_path: Path, base_python: Path, layers: Layers
) -> None:
    project = {**_PROJECT_FILES}
    project["pyproject.toml"] = project["pyproject.toml"].replace(
        '"kedro>=1.0,<2"', '"kedro>=1.0,<2", "pandas<2.1"'
    )
    context = _context_with(tmp_path, project)
    with pytest.raises(BuildFailed) as failed:
        build(
            context, tmp_path / "build", base_python, {"KEDRO_PROJECT": "my_project"}, None, layers
        )
    message = str(failed.value)
    assert re.match(r"RUN python -m pip .*install .*-r requirements.txt", message), message[:300]
    assert "pandas<2.1" in message
    assert "ResolutionImpossible" in message or "conflict" in message
    # No image; pip stopped before it changed anything: the service's pandas, only it.
    assert not (tmp_path / "build" / "stage-2").exists()
    installed = list((tmp_path / "build").glob("stage-1/**/site-packages/pandas-*.dist-info"))
    assert len(installed) == 1, installed
    version = tuple(int(part) for part in installed[0].name.split("-")[1].split(".")[:2])
    assert version >= (2, 1), installed
