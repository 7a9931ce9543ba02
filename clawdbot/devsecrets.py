"""Development secrets, generated once into ``var/secrets.json`` and reused by every process.

Only used where the environment does not set a secret; production sets
``DJANGO_SECRET_KEY``, ``MILESTONE_SIGNING_SECRET``, ``MILESTONE_WEBHOOK_SECRET`` and
``CLAWDBOT_ENCRYPTION_KEY``.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from clawdbot.contract import generate_legacy_secret, generate_webhook_secret


def _generators() -> dict[str, Callable[[], str]]:
    return {
        "django": lambda: secrets.token_urlsafe(50),
        "legacy": generate_legacy_secret,
        "webhook": generate_webhook_secret,
        "encryption": lambda: Fernet.generate_key().decode(),
    }


def load(var: Path) -> dict[str, str]:
    """Return the dev secrets, creating the file (mode 0600) on first use, race-free; a
    file from an earlier version gets the secrets it lacks added (its own are kept)."""
    var.mkdir(parents=True, exist_ok=True)
    path = var / "secrets.json"
    with open(var / "secrets.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        missing = {name: make() for name, make in _generators().items() if name not in values}
        if not missing:
            return values
        values.update(missing)
        fresh = var / "secrets.json.new"
        fresh.unlink(missing_ok=True)
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(values, handle)
        os.replace(fresh, path)
        return values
