"""The feed API's wire parameters: parsed here into plain values for the selectors, and
the page cursor written back. Malformed input raises ``BadQuery`` (400), naming it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from feed_app.exceptions import BadQuery
from feed_app.selectors import DEFAULT_LIMIT, MAX_LIMIT, FeedPage

_JS_INT = re.compile(r"([+-]?)(?:0[xX]([0-9a-fA-F]+)|([0-9]+))")
# ECMAScript's StrWhiteSpaceChar: str.isspace() differs (it takes U+001C-U+001F and U+0085,
# which parseInt does not skip, and misses U+FEFF, which it does).
_JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# ``before``: the last row's timestamp in epoch microseconds, and its position.
_CURSOR = re.compile(r"(-?[0-9]{1,19})_([0-9]{1,19})", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def js_limit(raw: str | None) -> int:
    """``min(50, max(1, parseInt(raw) || 20))``, with JavaScript's parseInt."""
    match = _JS_INT.match((raw or "").lstrip(_JS_SPACE))
    value = 0
    if match:
        sign, hexa, dec = match.groups()
        # Only the magnitude matters past the clamp, and Python's int() refuses strings
        # of over 4300 digits where parseInt just returns a huge number: keep 17 digits.
        value = int((hexa or dec).lstrip("0")[:17] or "0", 16 if hexa else 10)
        value = -value if sign == "-" else value
    return min(MAX_LIMIT, max(1, value or DEFAULT_LIMIT))


def feed_cursor_parse(cursor: str) -> tuple[datetime, int]:
    """The (timestamp, position) a ``nextCursor`` names."""
    match = _CURSOR.fullmatch(cursor)
    if not match:
        raise BadQuery("before is not a cursor this API returned", errors={"before": ["Invalid."]})
    micros, position = int(match[1]), int(match[2])
    try:
        return _EPOCH + timedelta(microseconds=micros), position
    except OverflowError:
        raise BadQuery("before is out of range", errors={"before": ["Invalid."]}) from None


def feed_page_args(query: Mapping[str, str]) -> dict[str, Any]:
    """``feed_page``'s keywords from the query parameters of ``GET /latest`` (a QueryDict)."""
    before = query.get("before")
    return {
        "limit": js_limit(query.get("limit")),
        "before": feed_cursor_parse(before) if before else None,
        "scope": query.get("scope"), "risk_status": query.get("riskStatus"),
        "source": query.get("source"),
    }


def int_param(query: Mapping[str, str], name: str) -> int | None:
    """The integer query parameter ``name``; None when absent or empty."""
    raw = query.get(name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        message = f"{name} must be an integer"
        raise BadQuery(message, errors={name: ["Must be an integer."]}) from None


def dead_letter_args(query: Mapping[str, str]) -> dict[str, Any]:
    """``dead_letter_list``'s keywords: ``limit`` 1…200 (default 50), ``before`` an id."""
    limit = int_param(query, "limit")
    return {"limit": 50 if limit is None else min(max(limit, 1), 200),
            "before": int_param(query, "before")}


def feed_cursor_text(timestamp: datetime, position: int) -> str:
    """The ``nextCursor`` naming the page after the row (timestamp, position)."""
    return f"{(timestamp - _EPOCH) // _MICROSECOND}_{position}"


def feed_page_json(page: FeedPage) -> str:
    """The body of ``GET /api/milestones/latest``, written without re-serialising."""
    cursor = "null"
    if page.next_before is not None:
        cursor = f'"{feed_cursor_text(*page.next_before)}"'
    return f'{{"ok":true,"items":{page.items_json},"nextCursor":{cursor}}}'
