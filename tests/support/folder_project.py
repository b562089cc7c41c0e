"""A Kedro project whose outputs are folders, written into a directory: a PartitionedDataset
with ``overwrite: true`` and one with Kedro's default (append), a small custom dataset that
writes many files under one path, a file whose name comes from a runtime parameter, and a
Spark table a node reads. Each run's files carry its ``tag``, so a folder mixing two runs is
seen at once."""

from __future__ import annotations

from pathlib import Path

from kedro_jobs_local.counting_project import write_kedro_project

_CATALOG = """
parts:
  type: partitions.PartitionedDataset
  path: data/03_primary/parts
  dataset: text.TextDataset
  filename_suffix: .txt
  overwrite: true

appended:
  type: partitions.PartitionedDataset
  path: data/03_primary/appended
  dataset: text.TextDataset
  filename_suffix: .txt

shards:
  type: {package}.datasets.ShardsDataset
  path: data/04_feature/shards

increments:
  type: partitions.IncrementalDataset
  path: data/02_intermediate/increments
  dataset: text.TextDataset
  filename_suffix: .txt

events:
  type: spark.SparkDataset
  filepath: data/01_raw/events
  file_format: parquet

named:
  type: text.TextDataset
  filepath: data/07_model_output/${{runtime_params:fname,out.txt}}
"""

_DATASETS = """
from pathlib import PurePosixPath

import fsspec
from kedro.io import AbstractDataset


class ShardsDataset(AbstractDataset):
    \"\"\"Saves a dict of name -> text as one file each under ``path`` (what Spark does with
    part files), without removing anything first: the folder is the dataset.\"\"\"

    def __init__(self, path, credentials=None):
        self._path = path
        self._credentials = credentials or {{}}

    def _fs(self):
        return fsspec.core.url_to_fs(self._path, **self._credentials)

    def _save(self, data):
        fs, root = self._fs()
        fs.makedirs(root, exist_ok=True)
        for name, text in data.items():
            with fs.open(f"{{root}}/{{name}}", "w") as handle:
                handle.write(text)

    def _load(self):
        fs, root = self._fs()
        return {{PurePosixPath(p).name: fs.cat_file(p).decode() for p in fs.find(root)}}

    def _exists(self):
        fs, root = self._fs()
        return bool(fs.exists(root))

    def _describe(self):
        return {{"path": self._path}}
"""

_NODES = """
def partitions(n, tag):
    return {f"part-{i}": f"{tag} {i}" for i in range(n)}


def one_more(tag):
    return {tag: tag}


def shards(n, tag):
    return {f"part-{i:05d}.txt": f"{tag} {i}" for i in range(n)}


def named(tag):
    return tag


def count(events):
    return events.count()


def new_ones(increments):
    return sorted(increments)
"""

_REGISTRY = """
from kedro.pipeline import node, pipeline

from {package}.nodes import count, named, new_ones, one_more, partitions, shards


def register_pipelines():
    return {{
        "partitions": pipeline([node(partitions, ["params:n", "params:tag"], "parts",
                                     name="partitions")]),
        "append": pipeline([node(one_more, "params:tag", "appended", name="one_more")]),
        "shards": pipeline([node(shards, ["params:n", "params:tag"], "shards",
                                 name="shards")]),
        "named": pipeline([node(named, "params:tag", "named", name="named")]),
        "incremental": pipeline([node(new_ones, "increments", "seen", name="new_ones",
                                      confirms="increments")]),
        "spark_read": pipeline([node(partitions, ["params:n", "params:tag"], "parts",
                                     name="partitions"),
                                node(count, "events", "rows", name="count")]),
        "__default__": pipeline([node(partitions, ["params:n", "params:tag"], "parts",
                                      name="partitions")]),
    }}
"""


def write_folder_project(root: Path, package: str = "folder_project") -> Path:
    """Write the project under ``root`` (created) and return its path."""
    project = write_kedro_project(
        root,
        package,
        _NODES,
        _REGISTRY,
        catalog=_CATALOG.format(package=package),
        parameters="n: 4\ntag: first\n",
        files={"src/{package}/datasets.py": _DATASETS.format()},
    )
    (project / "data").mkdir()
    return project
