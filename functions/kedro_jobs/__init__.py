"""kedro-jobs: a serverless job service for Kedro pipelines on AWS."""
