"""Settings of the baseline server: the project's, with nothing a bare view does not need.

No middleware, only the two baseline routes, one persistent connection per sync worker
(no pool): the competitor as fast as it gets under gunicorn's sync workers.
"""

from __future__ import annotations

from clawdbot.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
MIDDLEWARE: list[str] = []
DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # noqa: F405
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)  # noqa: F405
