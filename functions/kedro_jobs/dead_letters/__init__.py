"""The dead-letter function: fails the job of a dead-lettered message (no Kedro, no runner)."""
