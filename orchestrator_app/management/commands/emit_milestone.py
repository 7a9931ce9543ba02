"""``manage.py emit_milestone FILE|-``: emit one milestone event read from JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator_app.exceptions import MilestoneRejected
from orchestrator_app.services.emit import milestone_emit


class Command(BaseCommand):
    help = "Emit a milestone (a JSON event, or {event, context}) from FILE or stdin (-)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="JSON file, or - for stdin")
        parser.add_argument("--actor", default="cli", help="who emits (recorded in the event)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            text = sys.stdin.read() if options["file"] == "-" else Path(options["file"]).read_text()
            data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read a JSON milestone: {exc}") from None
        event, context = data, None
        if isinstance(data, dict) and isinstance(data.get("event"), dict):
            event, context = data["event"], data.get("context")
        try:
            result = milestone_emit(event=event, context=context, actor=options["actor"])
        except MilestoneRejected as exc:
            fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.errors or {}).items())
            raise CommandError(f"{exc.reason}: {fields}") from None
        targets = ", ".join(d.target for d in result.deliveries) or "no target"
        self.stdout.write(self.style.SUCCESS(
            f"emitted {result.milestone_id} idempotencyKey={result.idempotency_key} "
            f"queued for {targets}"))
