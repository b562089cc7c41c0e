"""example_pipelines: the example Kedro project bundled with kedro-jobs."""

__version__ = "0.1.0"
