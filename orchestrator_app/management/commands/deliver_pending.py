"""``manage.py deliver_pending``: deliver what is due now, in the foreground."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.transport import default_transport


class Command(BaseCommand):
    help = "Attempt every delivery that is due now (and unclaimed), then exit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=0, help="stop after N attempts")

    def handle(self, *args: Any, **options: Any) -> None:
        outcomes: Counter[str] = Counter()
        limit = options["limit"]
        if limit < 0:
            raise CommandError(f"--limit must be 0 (no limit) or more, not {limit}")
        while not limit or sum(outcomes.values()) < limit:
            batch = deliveries_run(transport=default_transport(), limit=min(100, limit or 100))
            if not batch:
                break
            for delivery in batch:
                outcomes[delivery.status] += 1
                self.stdout.write(f"{delivery.milestone_id} → {delivery.target}: "
                                  f"{delivery.status} (attempt {delivery.attempts})")
        summary = ", ".join(f"{n} {s}" for s, n in sorted(outcomes.items())) or "nothing due"
        self.stdout.write(self.style.SUCCESS(f"{sum(outcomes.values())} attempt(s): {summary}"))
