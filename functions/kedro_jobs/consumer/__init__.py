"""The consumer function: runs Kedro pipelines from SQS messages, exactly once per job."""
