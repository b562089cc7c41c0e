"""Project settings: Kedro's defaults (no hooks, in-memory session store)."""
