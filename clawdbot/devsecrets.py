"""Development secrets, generated once into ``var/secrets.json`` and reused by every process.

Only used where the environment does not set a secret; production sets
``DJANGO_SECRET_KEY``, ``MILESTONE_SIGNING_SECRET`` and ``MILESTONE_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from pathlib import Path

from clawdbot.contract import generate_legacy_secret, generate_webhook_secret


def load(var: Path) -> dict[str, str]:
    """Return the dev secrets, creating the file (mode 0600) on first use, race-free."""
    var.mkdir(parents=True, exist_ok=True)
    path = var / "secrets.json"
    with open(var / "secrets.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return json.loads(path.read_text())
        values = {
            "django": secrets.token_urlsafe(50),
            "legacy": generate_legacy_secret(),
            "webhook": generate_webhook_secret(),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(values, handle)
        return values
