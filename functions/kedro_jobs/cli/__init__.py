"""`kedro-jobs`: a command-line client of the REST API (HTTP only: no Kedro, no AWS SDK)."""
