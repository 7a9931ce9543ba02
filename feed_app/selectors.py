"""Read selectors of the feed side. The feed pages are serialised by PostgreSQL (json_agg):
measured about twice as fast as building them in Python (docs/PERFORMANCE.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection

from clawdbot.contract import RISK_STATUSES, js_iso_timestamp
from clawdbot.counting import Count, capped_count
from feed_app.exceptions import BadQuery, MilestoneNotFound
from feed_app.models import DeadLetter, FeedItem

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# json_agg of the stored API form, as cheap as serialising rows gets; the cursor is the last
# row's (timestamp in epoch microseconds, position).
_PAGE = """
WITH page AS (
    SELECT position, timestamp, item FROM feed_item
    WHERE {where} ORDER BY timestamp DESC, position DESC LIMIT %(limit)s
)
SELECT coalesce(json_agg(item ORDER BY timestamp DESC, position DESC), '[]')::text, count(*),
       (array_agg((extract(epoch FROM timestamp) * 1000000)::bigint
                  ORDER BY timestamp, position))[1],
       (array_agg(position ORDER BY timestamp, position))[1]
FROM page
"""


@dataclass(frozen=True)
class FeedPage:
    items_json: str  # a JSON array, newest timestampUtc first
    #: The (timestamp, position) of the page's last row when the page is full: the next
    #: page is what lies before it. ``None``: there is no next page.
    next_before: tuple[datetime, int] | None


def feed_page_query(
    *,
    limit: int = DEFAULT_LIMIT,
    before: tuple[datetime, int] | None = None,
    scope: str | None = None,
    risk_status: str | None = None,
    source: str | None = None,
) -> tuple[str, dict[str, int | str | datetime]]:
    """The SQL and parameters of ``feed_page``; raises ``BadQuery`` for a malformed one."""
    where = ["true"]
    params: dict[str, int | str | datetime] = {"limit": limit}
    filters = (("scope", "scope", scope), ("risk_status", "riskStatus", risk_status),
               ("source", "source", source))
    for column, name, value in filters:
        if value is None:
            continue
        if "\x00" in value:  # PostgreSQL text cannot even be compared with it
            raise BadQuery(f"{name} must not contain NUL", errors={name: ["Invalid."]})
        where.append(f"{column} = %({column})s")
        params[column] = value
    if before is not None:
        params["ts"], params["pos"] = before
        where.append("(timestamp, position) < (%(ts)s, %(pos)s)")
    return _PAGE.format(where=" AND ".join(where)), params


def feed_page_from_row(row: tuple[Any, ...], *, limit: int) -> FeedPage:
    """The ``FeedPage`` of the one row ``feed_page_query``'s statement returns."""
    items_json, count, last_micros, last_position = row
    next_before = None
    if count == limit:
        next_before = (_EPOCH + timedelta(microseconds=last_micros), last_position)
    return FeedPage(items_json=items_json, next_before=next_before)


def feed_page(
    *,
    limit: int = DEFAULT_LIMIT,
    before: tuple[datetime, int] | None = None,
    scope: str | None = None,
    risk_status: str | None = None,
    source: str | None = None,
) -> FeedPage:
    """Up to ``limit`` milestones, newest ``timestampUtc`` first, older than ``before``."""
    sql, params = feed_page_query(limit=limit, before=before, scope=scope,
                                  risk_status=risk_status, source=source)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return feed_page_from_row(cursor.fetchone(), limit=limit)


def milestone_get(*, idempotency_key: str) -> dict[str, Any]:
    """The stored milestone with this idempotency key, as a feed item."""
    # A key holding NUL was never accepted, and PostgreSQL could not even compare it.
    item = None
    if "\x00" not in idempotency_key:
        item = FeedItem.objects.filter(idempotency_key=idempotency_key).first()
    if item is None:
        raise MilestoneNotFound(f"no milestone with idempotencyKey {idempotency_key!r}")
    return feed_item_json(item)


def feed_item_json(item: FeedItem) -> dict[str, Any]:
    return item.item


def feed_after(*, position: int, limit: int = 500) -> list[FeedItem]:
    """Stored milestones with a position above ``position``, in position order."""
    return list(FeedItem.objects.filter(position__gt=position).order_by("position")[:limit])


def feed_last_position() -> int:
    last = FeedItem.objects.order_by("-position").values_list("position", flat=True).first()
    return last or 0


@dataclass(frozen=True)
class LivePage:
    items: list[FeedItem]  # newest timestampUtc first
    after: int  # where the page's WebSocket continues: ``?after=<after>``
    next_before: tuple[datetime, int] | None = None  # the older page's cursor, if any


def feed_live_page(*, limit: int, scope: str | None = None, risk_status: str | None = None,
                   source: str | None = None) -> LivePage:
    """The newest ``limit`` milestones (of a scope, risk or source if given) and the
    position the live socket continues from.

    The position is read first and the items are capped at it, so a milestone committed
    between the two reads comes over the socket instead of missing from both.
    """
    after = feed_last_position()
    items = FeedItem.objects.filter(position__lte=after)
    for field, value in (("scope", scope), ("risk_status", risk_status), ("source", source)):
        if value:
            items = items.filter(**{field: value})
    listed = list(items.order_by("-timestamp", "-position")[:limit])
    last = listed[-1] if len(listed) == limit else None
    return LivePage(items=listed, after=after,
                    next_before=(last.timestamp, last.position) if last else None)


def feed_risk_counts() -> dict[str, Count]:
    """Stored milestones by risk status, each exact up to the count cap (an index read)."""
    return {risk: capped_count(FeedItem.objects.filter(risk_status=risk))
            for risk in RISK_STATUSES}


def dead_letter_list(*, limit: int = 50, before: int | None = None) -> tuple[list[dict], Count]:
    """Rejections newest first (ids below ``before``), and how many rows there are.

    The count is exact up to ``clawdbot.counting.COUNT_CAP`` rows and estimated past it:
    a flood of junk must not make every read of the dead-letter scan the table.
    """
    rows = DeadLetter.objects.order_by("-id")
    if before is not None:
        rows = rows.filter(id__lt=before)
    return [dead_letter_json(row) for row in rows[:limit]], capped_count(DeadLetter.objects.all())


def dead_letter_json(row: DeadLetter) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": row.id,
        "timestampUtc": js_iso_timestamp(row.recorded_at),
        "reason": row.reason,
        "reasonCode": row.reason_code,
        "httpStatus": row.http_status,
        "errors": row.errors,
        "scheme": row.scheme,
        "remoteAddr": row.remote_addr,
        "bodySha256": row.body_sha256,
        "bodyBytes": row.body_bytes,
        "count": row.count,
        "aggregate": row.aggregate,
        "lastAtUtc": js_iso_timestamp(row.last_at),
    }
    if row.idempotency_key:
        item["idempotencyKey"] = row.idempotency_key
    return item
