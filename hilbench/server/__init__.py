"""The coordinator: agents register, lease jobs, upload results (FastAPI)."""
