"""``manage.py seed_milestones [--wait-for-server]``: sample milestones for an empty database.

Run by ``make run`` after start (unless ``CLAWDBOT_SEED=0``). The samples go through the
real pipeline: emitted, delivered signed over HTTP by the worker, ingested by the feed.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orchestrator_app import selectors
from orchestrator_app.samples import sample_milestones
from orchestrator_app.services.emit import milestone_emit


def _health_url() -> str:
    host = settings.HOST if settings.HOST not in ("0.0.0.0", "::", "") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.PORT}/api/health"


class Command(BaseCommand):
    help = "Emit a few sample milestones, only if no milestone was ever emitted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--wait-for-server", action="store_true",
            help="first wait until the web server on HOST:PORT reaches its database")
        parser.add_argument("--timeout", type=float, default=60.0,
                            help="seconds to wait for the server (default: 60)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["wait_for_server"]:
            self._wait(options["timeout"])
        if selectors.milestone_ever_emitted():
            self.stdout.write("milestones exist already; nothing seeded")
            return
        for event in sample_milestones(timezone.now()):
            milestone_emit(event=event, actor="seed", context={"sourceRunId": "seed"})
        self.stdout.write(self.style.SUCCESS("6 sample milestone(s) emitted"))

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = _health_url()
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                # 503 with the database up: the web serves, the worker is not up yet (the
                # milestones wait in the outbox for it).
                with contextlib.suppress(ValueError):
                    if exc.code == 503 and json.loads(exc.read()).get("database") == "up":
                        return
            except OSError:  # not listening yet
                pass
            time.sleep(0.2)  # pacing the health checks of a server that is starting
        raise CommandError(f"{url} did not answer within {timeout:g}s")
