"""The shared core of both functions: models, state machine, stores, settings.

Nothing here imports FastAPI or Kedro, and nothing creates an AWS client at import time
(tests/unit/test_architecture.py enforces both).
"""
