"""Settings of the benchmark server: the project's, plus the baseline views' routes."""

from __future__ import annotations

from clawdbot.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
