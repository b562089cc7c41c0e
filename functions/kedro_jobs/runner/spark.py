"""Spark datasets on S3: refused before the run unless Spark can read S3 here.

A Spark dataset turns ``s3://`` into ``s3a://``, which needs Hadoop's S3A file system
(``hadoop-aws`` and the AWS SDK bundle it depends on) on the JVM's class path; pyspark does
not ship it. Without it the job would run every node before the read and only then fail with
``ClassNotFoundException: org.apache.hadoop.fs.s3a.S3AFileSystem``. So the job fails before its
first node instead, saying what to add. Only reads go through Spark on S3: a Spark dataset the
run writes is staged on local disk and committed by fsspec.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

_S3 = ("s3", "s3a", "s3n")


class SparkCannotReadS3(RuntimeError):
    """A Spark dataset would read S3 where Spark has no S3A file system."""


def _is_spark(config: dict[str, Any]) -> bool:
    return "spark" in str(config.get("type", "")).lower().split(".")


def _jar_folders() -> list[Path]:
    folders = []
    spec = importlib.util.find_spec("pyspark")
    if spec is not None and spec.origin:
        folders.append(Path(spec.origin).parent / "jars")
    if os.environ.get("SPARK_HOME"):
        folders.append(Path(os.environ["SPARK_HOME"]) / "jars")
    return [folder for folder in folders if folder.is_dir()]


def _has_s3a(folders: list[Path]) -> bool:
    if "hadoop-aws" in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        return True  # --packages / --jars given to spark-submit
    return any(next(folder.glob("hadoop-aws-*.jar"), None) for folder in folders)


def _hadoop_version(folders: list[Path]) -> str | None:
    for folder in folders:
        for jar in folder.glob("hadoop-client-api-*.jar"):
            found = re.fullmatch(r"hadoop-client-api-(.+)\.jar", jar.name)
            if found:
                return found.group(1)
    return None


def check_spark_read(name: str, config: dict[str, Any], path: str) -> None:
    """Raise SparkCannotReadS3 if ``name`` is a Spark dataset reading ``path`` on S3 and
    this environment has no S3A file system for Spark."""
    if not _is_spark(config) or path.split("://", 1)[0] not in _S3 or "://" not in path:
        return
    folders = _jar_folders()
    if _has_s3a(folders):
        return
    version = _hadoop_version(folders)
    jars = (
        f"hadoop-aws-{version}.jar (the Hadoop version pyspark ships here) and the AWS SDK "
        f"bundle it depends on, in {folders[0]}"
        if version
        else "hadoop-aws-<version>.jar matching the Hadoop of your pyspark (its jars folder "
        "holds hadoop-client-api-<version>.jar) and the AWS SDK bundle it depends on, in "
        "pyspark's jars folder"
    )
    coordinates = f"org.apache.hadoop:hadoop-aws:{version or '<version>'}"
    raise SparkCannotReadS3(
        f"Dataset {name!r} ({config.get('type')}) would read {path} through Spark, whose S3 "
        "file system (org.apache.hadoop.fs.s3a.S3AFileSystem) is not installed here: add "
        f"{jars} (in the consumer's image), or set spark.jars.packages={coordinates}. "
        "Refused before any node ran."
    )
