"""``manage.py backfill_milestones FILE.jsonl``: import the reference's milestone log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator_app.exceptions import MilestoneRejected
from orchestrator_app.services.replay import milestone_backfill


class Command(BaseCommand):
    help = ("Emit each line {sentAtUtc, event} of a JSONL log, skipping milestoneIds already "
            "emitted (a second run emits nothing new).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--actor", default="backfill")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            lines = Path(options["file"]).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {options['file']}: {exc}") from None
        emitted = skipped = invalid = 0
        numbered = [(n, text) for n, text in enumerate(lines, 1) if text.strip()]
        for i, (n, text) in enumerate(numbered, 1):
            try:
                if milestone_backfill(line=json.loads(text), actor=options["actor"]):
                    emitted += 1
                else:
                    skipped += 1
            except (ValueError, MilestoneRejected) as exc:
                invalid += 1
                self.stderr.write(f"line {n}: {getattr(exc, 'errors', None) or exc}")
            if i % 100 == 0 or i == len(numbered):
                self.stdout.write(f"[{i}/{len(numbered)}] lines read")
        tail = f", {invalid} invalid line(s)" if invalid else ""
        self.stdout.write(self.style.SUCCESS(
            f"{emitted} new milestone(s) emitted, {skipped} skipped{tail}"))
