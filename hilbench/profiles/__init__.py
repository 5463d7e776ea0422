"""The profile store (SQLite by default, PostgreSQL by URL)."""

from hilbench.profiles.location import default_store_url
from hilbench.profiles.store import Store

__all__ = ["Store", "default_store_url"]
