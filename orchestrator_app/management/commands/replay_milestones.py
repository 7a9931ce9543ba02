"""``manage.py replay_milestones [--since ISO] [--until ISO] [--target NAME] [--dry-run]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from clawdbot.contract import parse_timestamp
from orchestrator_app import selectors
from orchestrator_app.management.cli import target_named
from orchestrator_app.services.emit import target_default_ensure
from orchestrator_app.services.replay import milestones_replay

#: Milestones per transaction: their deliveries come due together (and go in batches).
CHUNK = 1000


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
        parser.add_argument("--dry-run", action="store_true",
                            help="list what would be sent and how, change nothing")
        parser.add_argument("--reason", default="replay",
                            help="why (recorded on each requeued delivery; default: replay)")
        parser.add_argument("--actor", default="cli",
                            help="who replays (recorded in the events; default: cli)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["target"] and not options["dry_run"]:
            target_default_ensure()
        targets = ([target_named(options["target"])] if options["target"]
                   else selectors.targets_active())
        milestones = list(selectors.milestones_between(
            since=_moment(options["since"]), until=_moment(options["until"])))
        names = ", ".join(t.name for t in targets)
        dry_run = options["dry_run"]
        requeued = queued = skipped = 0
        with tqdm(total=len(milestones), unit=" milestones", file=self.stdout._out,
                  desc="replay", mininterval=0.5, disable=dry_run) as bar:
            for start in range(0, len(milestones), CHUNK):
                chunk = milestones[start:start + CHUNK]
                outcomes = milestones_replay(
                    idempotency_keys=[m.idempotency_key for m in chunk], targets=targets,
                    actor=options["actor"], reason=options["reason"], dry_run=dry_run)
                for m, outcome in zip(chunk, outcomes, strict=True):
                    requeued, queued = requeued + outcome.requeued, queued + outcome.queued
                    skipped += outcome.skipped
                    if dry_run:
                        self.stdout.write(
                            f"would replay {m.milestone_id} ({m.idempotency_key}) → {names}: "
                            f"{outcome.requeued} requeued, {outcome.queued} newly queued, "
                            f"{outcome.skipped} already in flight")
                bar.update(len(chunk))
        verb = "would be replayed" if dry_run else "replayed"
        self.stdout.write(self.style.SUCCESS(
            f"{len(milestones)} milestone(s) {verb} to {names or 'no target'}, "
            f"{requeued + queued + skipped} delivery(ies): {requeued} requeued, "
            f"{queued} newly queued, {skipped} already in flight"))
