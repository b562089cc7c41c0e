"""Whether a Spark dataset may read S3 here: only with Hadoop's S3A file system on Spark's
class path (hadoop-aws in pyspark's or SPARK_HOME's jars, or given to spark-submit); else the
refusal names the hadoop-aws version matching the Hadoop that Spark ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_jobs.runner.spark import SparkCannotReadS3, check_spark_read

SPARK = {"type": "spark.SparkDataset", "filepath": "s3://b/data/events"}


@pytest.fixture
def spark_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    jars = tmp_path / "spark" / "jars"
    jars.mkdir(parents=True)
    (jars / "hadoop-client-api-3.4.1.jar").write_bytes(b"")
    monkeypatch.setenv("SPARK_HOME", str(tmp_path / "spark"))
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS", raising=False)
    return jars


def test_without_hadoop_aws_the_refusal_names_the_matching_jar(spark_home: Path) -> None:
    with pytest.raises(SparkCannotReadS3) as refused:
        check_spark_read("events", SPARK, "s3://b/data/events")
    assert "hadoop-aws-3.4.1.jar" in str(refused.value)
    assert "spark.jars.packages=org.apache.hadoop:hadoop-aws:3.4.1" in str(refused.value)


def test_with_hadoop_aws_in_the_jars_a_read_is_allowed(spark_home: Path) -> None:
    (spark_home / "hadoop-aws-3.4.1.jar").write_bytes(b"")
    check_spark_read("events", SPARK, "s3://b/data/events")


def test_with_hadoop_aws_given_to_spark_submit_a_read_is_allowed(
    spark_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PYSPARK_SUBMIT_ARGS", "--packages org.apache.hadoop:hadoop-aws:3.4.1 pyspark-shell"
    )
    check_spark_read("events", SPARK, "s3://b/data/events")


@pytest.mark.parametrize(
    ("config", "path"),
    [
        (SPARK, "/data/root/data/events"),  # a local data root
        ({"type": "pandas.ParquetDataset"}, "s3://b/data/events.parquet"),  # not Spark
    ],
)
def test_local_reads_and_other_datasets_are_never_refused(
    spark_home: Path, config: dict[str, str], path: str
) -> None:
    check_spark_read("events", config, path)
