"""``manage.py emit_milestone FILE|-``: emit one milestone event read from JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator_app.exceptions import MilestoneRejected
from orchestrator_app.management.cli import errors_text, json_error_text
from orchestrator_app.services.emit import milestone_emit

_SHAPE = 'a milestone event, or {"event": …, "context": …}'


class Command(BaseCommand):
    help = "Emit a milestone (a JSON event, or {event, context}) from FILE or stdin (-)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="JSON file, or - for stdin")
        parser.add_argument("--actor", default="cli",
                            help="who emits (recorded in the event; default: cli)")

    def handle(self, *args: Any, **options: Any) -> None:
        source = "stdin" if options["file"] == "-" else options["file"]
        try:
            text = sys.stdin.read() if options["file"] == "-" else Path(options["file"]).read_text(
                encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {source}: {exc}") from None
        if not text.strip():
            raise CommandError(f"{source} is empty: expected {_SHAPE} as JSON")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{source} is not JSON: {json_error_text(exc)}") from None
        except (ValueError, RecursionError) as exc:
            raise CommandError(f"{source} is not JSON this command can read: {exc}") from None
        if not isinstance(data, dict):
            kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
                type(data), "a number")
            raise CommandError(f"{source} holds {kind}: expected {_SHAPE} (a JSON object)")
        event, context = data, None
        if isinstance(data.get("event"), dict):
            event, context = data["event"], data.get("context")
        try:
            result = milestone_emit(event=event, context=context, actor=options["actor"])
        except MilestoneRejected as exc:
            detail = errors_text(exc.errors)
            raise CommandError(f"{exc.reason}: {detail}" if detail else exc.reason) from None
        targets = ", ".join(d.target for d in result.deliveries) or "no target"
        self.stdout.write(self.style.SUCCESS(
            f"emitted {result.milestone_id} idempotencyKey={result.idempotency_key} "
            f"queued for {targets}"))
