"""The sweeper: re-sends jobs whose consumer died or whose message never left (no Kedro)."""
