"""`cin-style api`: stylization over HTTP (FastAPI + uvicorn, the `serve` extra), torch-free."""
