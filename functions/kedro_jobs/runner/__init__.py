"""A job's run of a Kedro pipeline: request, session, hooks, the job's own data (staging and
commit), isolation (fork or inline) and outcome. It knows nothing of AWS or of the job store:
the consumer (kedro_jobs.consumer) claims jobs and records outcomes around it."""
