"""Locating the shared contract files the tests compare against."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``$CLAWDBOT_SHARED_DIR``, else the ``shared`` directory beside the repository."""
    configured = os.environ.get("CLAWDBOT_SHARED_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared"
