"""The admin index's overview: the outbox first, then ingest, each read bounded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.safestring import SafeString

from clawdbot.console.charts import legend, stacked_bars
from clawdbot.counting import Count
from feed_app.overview import IngestOverview, ingest_overview
from orchestrator_app.health import OutboxOverview, outbox_overview
from orchestrator_app.models import UNDELIVERABLE_STATUSES

DELIVERY_SERIES = (("delivered", "#1a7f37"), ("failed", "#bf8700"), ("rejected", "#cf222e"))
INGEST_SERIES = (("accepted", "#0969da"), ("duplicate", "#8250df"), ("rejected", "#cf222e"))


@dataclass(frozen=True)
class Overview:
    now: Any
    outbox: OutboxOverview
    ingest: IngestOverview
    delivery_chart: SafeString
    delivery_legend: SafeString
    ingest_chart: SafeString
    ingest_legend: SafeString

    @property
    def undeliverable(self) -> Count:
        parts = [self.outbox.by_status[s] for s in UNDELIVERABLE_STATUSES]
        return Count(sum(p.value for p in parts), all(p.exact for p in parts))

    @property
    def oldest_due_age_s(self) -> float | None:
        oldest = self.outbox.backlog.oldest_due_at
        return (self.now - oldest).total_seconds() if oldest else None


def overview() -> Overview:
    now = timezone.now()
    outbox, ingest = outbox_overview(now=now), ingest_overview(now=now)
    return Overview(
        now, outbox, ingest,
        stacked_bars(outbox.hourly, DELIVERY_SERIES, label="delivery attempts per hour"),
        legend(DELIVERY_SERIES),
        stacked_bars(ingest.hourly, INGEST_SERIES, label="ingest requests per hour"),
        legend(INGEST_SERIES),
    )
