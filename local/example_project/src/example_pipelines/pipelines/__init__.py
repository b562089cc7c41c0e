"""One module per pipeline; the shared order nodes live in orders.py."""
