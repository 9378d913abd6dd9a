"""The HTTP API of the job service (FastAPI); never imports torch."""
