"""`kedro-jobs`'s exit codes: 0 success (for a watched job: it completed), 1 the job failed or
was cancelled, 2 a usage error, 3 the API refused the request or could not be reached."""

EXIT_OK, EXIT_JOB, EXIT_USAGE, EXIT_API = 0, 1, 2, 3
