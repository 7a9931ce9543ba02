"""``rebuild_projections [--projection NAME]``: replay the log into emptied read models."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clawdbot.eventstore import projections


class Command(BaseCommand):
    help = "Empty projection tables and rebuild them from the event log."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--projection",
            action="append",
            dest="names",
            metavar="NAME",
            help="Rebuild only this projection (repeatable). Default: all.",
        )
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args: Any, names: list[str] | None, batch_size: int, **opts: Any) -> None:
        try:
            chosen = [projections.get(n) for n in names] if names else projections.registered()
        except KeyError as exc:
            raise CommandError(exc.args[0]) from exc
        for projection in chosen:
            started = time.perf_counter()
            count = projections.rebuild(
                projection.name, batch_size=batch_size, progress=self._bar(projection.name)
            )
            elapsed = time.perf_counter() - started
            self.stdout.write("")
            self.stdout.write(
                self.style.SUCCESS(
                    f"{projection.name}: {count} event(s) replayed in {elapsed:.1f}s"
                )
            )

    def _bar(self, name: str) -> Any:
        interactive = sys.stdout.isatty()

        def show(done: int, total: int) -> None:
            share = done / total if total else 1.0
            filled = int(share * 30)
            line = f"{name}: [{'#' * filled}{'.' * (30 - filled)}] {share:6.1%} ({done}/{total})"
            if interactive:
                self.stdout.write("\r" + line, ending="")
            else:
                self.stdout.write(line)

        return show
