from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def var_dir() -> Iterator[Path]:
    """A fresh ``var/`` for an embedded server of its own.

    Made with tempfile rather than pytest's tmp_path: pytest prunes older base temp folders
    when another session starts, which would pull a running server's data from under it.
    """
    root = Path(tempfile.mkdtemp(prefix="clawdbot-test-"))
    yield root / "var"
    shutil.rmtree(root, ignore_errors=True)
