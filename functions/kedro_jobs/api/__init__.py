"""The API function: the REST contract (FastAPI behind Mangum). It never imports Kedro."""
