"""``manage.py replay_milestones [--since ISO] [--until ISO] [--target NAME] [--dry-run]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clawdbot.contract import parse_timestamp
from orchestrator_app import selectors
from orchestrator_app.models import Target
from orchestrator_app.services.emit import targets_active
from orchestrator_app.services.replay import milestone_replay


def _moment(text: str | None) -> Any:
    if not text:
        return None
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise CommandError(f"{text!r}: {exc}") from None


class Command(BaseCommand):
    help = "Send stored milestones again, with their original idempotencyKeys."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="sentAtUtc >= this ISO date-time")
        parser.add_argument("--until", help="sentAtUtc < this ISO date-time")
        parser.add_argument("--target", help="only this target (default: every active one)")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--reason", default="replay")
        parser.add_argument("--actor", default="cli")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["target"]:
            targets = list(Target.objects.filter(name=options["target"]))
            if not targets:
                raise CommandError(f"no target named {options['target']!r}")
        else:
            targets = targets_active()
        milestones = list(selectors.milestones_between(
            since=_moment(options["since"]), until=_moment(options["until"])))
        names = ", ".join(t.name for t in targets)
        requeued = queued = skipped = 0
        for i, m in enumerate(milestones, 1):
            if options["dry_run"]:
                self.stdout.write(f"would replay {m.milestone_id} ({m.idempotency_key}) → {names}")
                continue
            outcome = milestone_replay(idempotency_key=m.idempotency_key, targets=targets,
                                       actor=options["actor"], reason=options["reason"])
            requeued, queued = requeued + outcome.requeued, queued + outcome.queued
            skipped += outcome.skipped
            self.stdout.write(f"[{i}/{len(milestones)}] {m.milestone_id}")
        verb = "would be replayed" if options["dry_run"] else "replayed"
        self.stdout.write(self.style.SUCCESS(
            f"{len(milestones)} milestone(s) {verb} to {names or 'no target'}: "
            f"{requeued} requeued, {queued} newly queued, {skipped} already in flight"))
