"""Settings of the benchmark server: the project's, plus the baseline views' routes.

``BENCH_DB_POOL=1`` turns on psycopg's connection pool (Django's ``OPTIONS["pool"]``),
which an ASGI server needs to reuse connections across its per-request threads.
"""

from __future__ import annotations

import os

from clawdbot.settings import *  # noqa: F403
from clawdbot.settings import DATABASES

ROOT_URLCONF = "bench.urls"

if os.environ.get("BENCH_DB_POOL") == "1":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 4, "max_size": 32}
