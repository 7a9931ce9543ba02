"""``manage.py backfill_milestones FILE.jsonl``: import the reference's milestone log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator_app.exceptions import MilestoneRejected
from orchestrator_app.management.cli import errors_text, json_error_text
from orchestrator_app.services.replay import milestone_backfill

# What JSON itself counts as whitespace: a line of only these is blank. (str.strip would
# also drop U+0085, U+2028 and U+2029, which are ordinary characters inside a line.)
_JSON_SPACE = " \t\r"


def log_lines(text: str) -> list[tuple[int, str]]:
    """The non-blank lines of a JSONL log with their 1-based numbers, split on "\\n" only
    (SPEC §7): ``JSON.stringify`` writes U+2028, U+2029 and U+0085 unescaped."""
    return [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip(_JSON_SPACE)]


class Command(BaseCommand):
    help = ("Emit each line of a JSONL log (the reference's {sentAtUtc, event} lines, or plain "
            "milestone events), skipping milestoneIds already emitted (a second run emits "
            "nothing new). Exits non-zero when any line is invalid; the valid ones are emitted.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="JSONL file, one log line or milestone event per line")
        parser.add_argument("--actor", default="backfill",
                            help="who emits (recorded in the events; default: backfill)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            text = Path(options["file"]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {options['file']}: {exc}") from None
        numbered = log_lines(text)
        emitted = skipped = invalid = 0
        for i, (n, line) in enumerate(numbered, 1):
            try:
                if milestone_backfill(line=json.loads(line), actor=options["actor"]):
                    emitted += 1
                else:
                    skipped += 1
            except json.JSONDecodeError as exc:
                invalid += 1
                self.stderr.write(f"line {n}: not JSON: {json_error_text(exc)}")
            except (ValueError, RecursionError) as exc:  # e.g. an integer of 5,000 digits
                invalid += 1
                self.stderr.write(f"line {n}: not JSON this command can read: {exc}")
            except MilestoneRejected as exc:
                invalid += 1
                self.stderr.write(f"line {n}: {errors_text(exc.errors) or exc.reason}")
            if i % 100 == 0 or i == len(numbered):
                self.stdout.write(f"[{i}/{len(numbered)}] lines read")
        tail = f", {invalid} invalid line(s)" if invalid else ""
        summary = f"{emitted} new milestone(s) emitted, {skipped} skipped{tail}"
        if invalid:
            self.stdout.write(summary)
            raise CommandError(f"{invalid} of {len(numbered)} line(s) invalid (listed above); "
                               "the valid lines were emitted")
        self.stdout.write(self.style.SUCCESS(summary))
