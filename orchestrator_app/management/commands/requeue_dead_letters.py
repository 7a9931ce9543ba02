"""``manage.py requeue_dead_letters (--key K … | --all) [--target NAME] [--dry-run]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clawdbot.errors import DomainError
from orchestrator_app import selectors
from orchestrator_app.management.cli import shorten, target_named
from orchestrator_app.services.triage import delivery_requeue


class Command(BaseCommand):
    help = "Requeue undeliverable (rejected, dead-letter) deliveries, by idempotencyKey or all."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--key", action="append", default=[], help="idempotencyKey (repeat)")
        which.add_argument("--all", action="store_true", help="every dead letter")
        parser.add_argument("--target", default="", help="only deliveries to this target")
        parser.add_argument("--dry-run", action="store_true", help="list, change nothing")
        parser.add_argument("--reason", default="requeued from the command line",
                            help="why (recorded on each requeued delivery)")
        parser.add_argument("--actor", default="cli",
                            help="who requeues (recorded in the events; default: cli)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["target"]:
            target_named(options["target"])
        qs = selectors.dead_letters(target=options["target"])
        if options["key"]:
            qs = qs.filter(idempotency_key__in=options["key"])
        rows = list(qs)
        if not rows and options["key"]:
            raise CommandError("no dead letter matches the given key(s)")
        done = 0
        for delivery in rows:
            label = f"{delivery.idempotency_key} {delivery.milestone_id} → {delivery.target} " \
                    f"({delivery.status}: {shorten(delivery.last_error)})"
            if options["dry_run"]:
                self.stdout.write(f"would requeue {label}")
                continue
            try:
                delivery_requeue(delivery_id=str(delivery.pk), actor=options["actor"],
                                 reason=options["reason"])
            except DomainError as exc:
                self.stderr.write(f"skipped {label}: {exc.reason}")
                continue
            done += 1
            self.stdout.write(f"requeued {label}")
        verb = "would be requeued" if options["dry_run"] else "requeued"
        count = len(rows) if options["dry_run"] else done
        self.stdout.write(self.style.SUCCESS(f"{count} dead letter(s) {verb}"))
