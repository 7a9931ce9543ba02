"""``manage.py backfill_milestones FILE.jsonl``: import the reference's milestone log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from orchestrator_app.management.cli import errors_text, json_error_text
from orchestrator_app.services.backfill import CHUNK_LINES, milestones_backfill

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
            "nothing new), a chunk of lines per transaction. Exits non-zero when any line is "
            "invalid; the valid ones are emitted.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="JSONL file, one log line or milestone event per line")
        parser.add_argument("--actor", default="backfill",
                            help="who emits (recorded in the events; default: backfill)")
        parser.add_argument("--chunk", type=int, default=CHUNK_LINES,
                            help=f"lines per transaction (default: {CHUNK_LINES})")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["chunk"] < 1:
            raise CommandError(f"--chunk must be 1 or more, not {options['chunk']}")
        try:
            text = Path(options["file"]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {options['file']}: {exc}") from None
        numbered = log_lines(text)
        emitted = skipped = 0
        problems: list[tuple[int, str]] = []
        # The bar goes to this command's stdout (a terminal redraws it in place).
        with tqdm(total=len(numbered), unit=" lines", file=self.stdout._out,
                  desc="backfill", dynamic_ncols=True, mininterval=0.5) as bar:
            for start in range(0, len(numbered), options["chunk"]):
                parsed: list[tuple[int, Any]] = []
                for n, line in numbered[start:start + options["chunk"]]:
                    try:
                        parsed.append((n, json.loads(line)))
                    except json.JSONDecodeError as exc:
                        problems.append((n, f"not JSON: {json_error_text(exc)}"))
                    except (ValueError, RecursionError) as exc:  # an integer of 5,000 digits
                        problems.append((n, f"not JSON this command can read: {exc}"))
                chunk = milestones_backfill(lines=parsed, actor=options["actor"])
                emitted, skipped = emitted + chunk.emitted, skipped + chunk.skipped
                problems += [(n, errors_text(exc.errors) or exc.reason)
                             for n, exc in chunk.invalid]
                bar.update(len(numbered[start:start + options["chunk"]]))
        for n, problem in sorted(problems):
            self.stderr.write(f"line {n}: {problem}")
        invalid = len(problems)
        tail = f", {invalid} invalid line(s)" if invalid else ""
        summary = f"{emitted} new milestone(s) emitted, {skipped} skipped{tail}"
        if invalid:
            self.stdout.write(summary)
            raise CommandError(f"{invalid} of {len(numbered)} line(s) invalid (listed above); "
                               "the valid lines were emitted")
        self.stdout.write(self.style.SUCCESS(summary))
