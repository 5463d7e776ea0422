"""Where the default store lives."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

STORE_ENV = "HILBENCH_STORE"


def default_store_url() -> str:
    """``$HILBENCH_STORE`` if set, else a SQLite file in the user's data directory."""
    configured = os.environ.get(STORE_ENV)
    if configured:
        return configured
    return f"sqlite:///{Path(platformdirs.user_data_dir('hilbench')) / 'profiles.db'}"
