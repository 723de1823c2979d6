"""Settings the CLI reads: defaults < HEISTWATCH_* environment variables < command-line flags."""

from __future__ import annotations

import os
from pathlib import Path


def data_folder() -> Path:
    """heistwatch's folder in the XDG data home: the default knowledge base and state files live here."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "heistwatch"


def default_kb() -> str:
    """The knowledge base unless told otherwise: $HEISTWATCH_KB (a file or a postgresql:// URL), else a file in
    the data folder."""
    return os.environ.get("HEISTWATCH_KB") or str(data_folder() / "kb.sqlite")


def cache_folder() -> Path:
    """heistwatch's folder in the XDG cache home: compiled artefacts that only save time (safe to delete)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "heistwatch"
