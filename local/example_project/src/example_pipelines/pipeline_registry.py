"""The project's pipelines."""

from kedro.pipeline import Pipeline

from example_pipelines.pipelines import data_loading, feature_engineering, hello, reporting


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {
        "data_loading": data_loading.create_pipeline(),
        "feature_engineering": feature_engineering.create_pipeline(),
        "reporting": reporting.create_pipeline(),
        "hello": hello.create_pipeline(),
    }
    pipelines["__default__"] = pipelines["data_loading"]
    return pipelines
