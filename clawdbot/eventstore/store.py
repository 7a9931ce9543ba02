"""Append to and read from the event log. Insert and select only: nothing here updates.

Gap safety: every append takes one transaction-scoped advisory lock before it inserts, so
appends are serialised from their INSERT to their COMMIT. Positions therefore become
visible in position order, and a reader that follows ``read_all(after=P)`` can never see
position P+2 while P+1 is still to commit. (A sequence alone does not give that: a
transaction that took P+1 may commit after one that took P+2, and a reader that has moved
past P+2 would skip it for ever.) docs/ARCHITECTURE.md weighs this against a high-water
mark and explains the choice. Rolled-back appends leave holes in the positions, never a
reorder, so readers need not wait on holes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

import orjson
import psycopg
from django.db import IntegrityError, connection, transaction

# Arbitrary but fixed key for pg_advisory_xact_lock: "append to eventstore_event".
APPEND_LOCK_KEY = 0x0C1A_7DB0_E7E0


class Expect(Enum):
    """Expected versions that are not a number."""

    ANY = "any"  # append whatever the stream holds
    NO_STREAM = "no_stream"  # the stream must not exist yet


ExpectedVersion = int | Expect


class ConcurrencyError(Exception):
    """The stream is not at the expected version; nothing was written."""

    def __init__(self, stream_id: str, expected: ExpectedVersion, actual: int) -> None:
        shown = expected.value if isinstance(expected, Expect) else expected
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, expected {shown}; nothing appended"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class NewEvent:
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    stream_id: str
    version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


# Event data travels as one JSON array text per column, unpacked into the functions'
# jsonb[] by PostgreSQL: psycopg dumps a list of strings as an array literal in Python,
# escaping each element with a regular expression, which cost a millisecond per kilobyte of
# event (most of a backfill's time), where joining the JSON texts costs next to nothing.
_JSONB_ARRAY = ("ARRAY(SELECT x FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(x, o)"
                " ORDER BY o)")


def _json_array(texts: Sequence[str]) -> str:
    return "[" + ",".join(texts) + "]"


# Event data and metadata are written as JSON by orjson: 0.3 us for a 400-byte milestone
# where json.dumps takes 3.8 (a sixth of an append_batch of 1,000 events), with json.dumps
# deciding wherever orjson could write something else. Under these options orjson refuses
# what it would write differently (datetimes, dataclasses, subclasses of the JSON types,
# non-string keys, integers past 64 bits, lone surrogates), and a text with a null in it
# is written again by json.dumps, since orjson writes NaN and the infinities as null where
# json.dumps writes what PostgreSQL refuses (an event that holds one is not stored).
_ORJSON_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
                   | orjson.OPT_PASSTHROUGH_SUBCLASS)


def _dumps(value: Any) -> str:
    try:
        text = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value)
    return json.dumps(value) if b"null" in text else text.decode()


# One round trip: eventstore_append (migration 0002) takes the append lock, reads the
# stream's version with a fresh snapshot, checks it and inserts. ON CONFLICT leaves the
# final word on duplicates to the unique (stream, version) index.
_APPEND = (f"SELECT * FROM eventstore_append(%s, %s, %s, {_JSONB_ARRAY}, {_JSONB_ARRAY}, %s)")


def append(
    stream_id: str,
    events: Sequence[NewEvent],
    *,
    expected_version: ExpectedVersion,
) -> list[RecordedEvent]:
    """Append ``events`` to ``stream_id`` inside the caller's transaction; store only.

    Precondition: an atomic block is open (the events commit or roll back with the
    caller's other writes). ``expected_version`` is the stream's current version (0 for an
    empty stream), ``Expect.NO_STREAM`` or ``Expect.ANY``. On a mismatch raises
    ``ConcurrencyError`` and writes nothing; the transaction stays usable. Read models are
    not touched: services record through ``projections.record``, which appends here and
    then applies the inline projections.
    """
    if not events:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("eventstore.append must run inside transaction.atomic()")
    expected = 0 if expected_version is Expect.NO_STREAM else expected_version
    params = [
        APPEND_LOCK_KEY,
        stream_id,
        [e.type for e in events],
        _json_array([_dumps(e.data) for e in events]),
        _json_array([_dumps(e.metadata) for e in events]),
        None if expected is Expect.ANY else expected,
    ]
    rows = _insert(params)
    if len(rows) != len(events):
        # Nothing was inserted: the version guard failed or the unique (stream, version)
        # index decided. Under the append lock a partial insert cannot happen.
        raise ConcurrencyError(stream_id, expected_version, stream_version(stream_id))
    return [
        RecordedEvent(pos, stream_id, version, e.type, e.data, e.metadata, at)
        for (pos, version, at), e in zip(rows, events, strict=True)
    ]


def _insert(params: list[Any]) -> list[tuple[Any, ...]]:
    # A plain psycopg cursor on Django's connection: server-side parameters, so the
    # statement is prepared once per connection instead of planned on every append.
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_APPEND, params, prepare=True)
        return cursor.fetchall()


@dataclass(frozen=True)
class Append:
    """One stream's part of ``append_batch``: the arguments of ``append``."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: ExpectedVersion


@dataclass(frozen=True)
class AppendOutcome:
    """What ``append_batch`` did with one ``Append``: ``recorded`` (all its events),
    or ``conflict`` (the stream was not at the expected version; none of them written)."""

    recorded: list[RecordedEvent]
    conflict: ConcurrencyError | None = None


# recorded_at is the transaction's time, so every row of a call has the same one: it is
# sent (and turned into a datetime in Python) only where it changes, not once per row.
_APPEND_BATCH = (
    "SELECT stream_ord, new_position, new_version, CASE WHEN new_recorded_at IS DISTINCT FROM"
    " lag(new_recorded_at) OVER (ORDER BY new_position) THEN new_recorded_at END FROM"
    f" eventstore_append_batch(%s, %s, %s, %s, %s, {_JSONB_ARRAY}, {_JSONB_ARRAY})"
    " ORDER BY new_position"
)


def append_batch(appends: Sequence[Append]) -> list[AppendOutcome]:
    """Append to many streams in one call, inside the caller's transaction; store only
    (``projections.record_batch`` / ``record_each`` project). One round trip, or from
    ``COPY_FROM_EVENTS`` events on four (reserve, savepoint, COPY, release).

    Positions follow input order, as if ``append`` had been called for each ``Append`` in
    turn, and the append lock is taken once, so gap safety holds as for ``append``. Each
    stream stands alone: one not at its expected version gets ``AppendOutcome.conflict``
    (nothing of it written; the unique (stream, version) index has the final word, as for
    ``append``) and the others are written. A stream may come back in later ``Append``s
    that expect ``Expect.ANY`` or the version its earlier ones leave (ValueError
    otherwise); they stand or fall with its first one.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("eventstore.append_batch must run inside transaction.atomic()")
    ordinal_of: dict[str, int] = {}  # stream -> 1-based ordinal in the call
    streams: list[str] = []
    expected: list[int | None] = []
    next_version: dict[str, int | None] = {}  # what a later Append may expect, if known
    event_stream: list[int] = []
    events: list[NewEvent] = []
    for a in appends:
        if not a.events:
            continue
        stream_id, count = a.stream_id, len(a.events)
        ordinal = ordinal_of.get(stream_id)
        if ordinal is None:
            wanted = (None if a.expected_version is Expect.ANY
                      else 0 if a.expected_version is Expect.NO_STREAM else a.expected_version)
            streams.append(stream_id)
            expected.append(wanted)
            ordinal = ordinal_of[stream_id] = len(streams)
            next_version[stream_id] = None if wanted is None else wanted + count
        else:
            known = next_version[stream_id]
            if a.expected_version is not Expect.ANY and (
                    a.expected_version is Expect.NO_STREAM or a.expected_version != known):
                raise ValueError(f"append_batch: stream {stream_id!r} again, expecting "
                                 f"{a.expected_version}; a repeated stream expects Expect.ANY "
                                 "or the version its earlier appends leave")
            if known is not None:
                next_version[stream_id] = known + count
        event_stream.extend([ordinal] * count)
        events.extend(a.events)
    if not streams:
        return [AppendOutcome([]) for _ in appends]
    types = [e.type for e in events]
    data = list(map(_dumps, [e.data for e in events]))
    # A batch's events mostly share one metadata object (the request's): serialised once.
    metadata_text: dict[int, tuple[dict[str, Any], str]] = {}
    metadata: list[str] = []
    for e in events:
        known_text = metadata_text.get(id(e.metadata))
        if known_text is None or known_text[0] is not e.metadata:
            known_text = metadata_text[id(e.metadata)] = (e.metadata, _dumps(e.metadata))
        metadata.append(known_text[1])
    batch = (streams, expected, event_stream, types, data, metadata)
    written = _copy_batch(*batch) if len(types) >= COPY_FROM_EVENTS else None
    if written is None:
        written = _insert_batch(*batch)
    rows, refused = written
    # Rows come in position order, which is input order: each Append not refused takes
    # the next len(events) of them.
    next_row = iter(rows)
    at: Any = None  # the first row carries it
    outcomes: list[AppendOutcome] = []
    for a in appends:
        if not a.events:
            outcomes.append(AppendOutcome([]))
            continue
        if ordinal_of[a.stream_id] in refused:
            outcomes.append(AppendOutcome([], ConcurrencyError(
                a.stream_id, a.expected_version, stream_version(a.stream_id))))
            continue
        recorded = []
        for e in a.events:
            position, version, changed_at = next(next_row)
            at = changed_at or at
            recorded.append(RecordedEvent(position, a.stream_id, version, e.type, e.data,
                                          e.metadata, at))
        outcomes.append(AppendOutcome(recorded))
    return outcomes


# From this many events on, append_batch reserves positions and versions under the append
# lock (eventstore_reserve_batch, migration 0005) and COPYs the events in: COPY inserts
# in bulk where INSERT ... SELECT goes row by row, 1.28 times the rate at 1,000 events of
# one stream each (docs/PERFORMANCE.md, "Run C"). Below it, the three extra round trips
# (savepoint, COPY, release) cost more than they save.
COPY_FROM_EVENTS = 100

# The stream ids travel as one JSON array text and the numbers as array literals joined in
# C: psycopg dumps a list as an array in Python, element by element (with a regular
# expression each for quoting in text form), 1.4 ms of a 1,000-stream call.
_RESERVE = ("SELECT * FROM eventstore_reserve_batch(%s, ARRAY(SELECT x FROM"
            " json_array_elements_text(%s::json) WITH ORDINALITY AS t(x, o) ORDER BY o),"
            " %s::integer[], %s::integer[])")


def _int_array(numbers: Sequence[int | None]) -> str:
    """An integer[] literal; None is NULL."""
    return "{" + ",".join(["NULL" if n is None else str(n) for n in numbers]) + "}"


_COPY = "COPY eventstore_event (position, stream_id, version, type, data, metadata) FROM STDIN"
BatchRow = tuple[int, int, "datetime | None"]  # position, version, at (where it changes)
Written = tuple[list[BatchRow], set[int]]  # rows in position order, refused stream ordinals


def _insert_batch(streams: list[str], expected: list[int | None], event_stream: list[int],
                  types: list[str], data: list[str], metadata: list[str]) -> Written:
    """The whole batch in one statement (eventstore_append_batch)."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_APPEND_BATCH, [APPEND_LOCK_KEY, streams, expected, event_stream, types,
                                       _json_array(data), _json_array(metadata)], prepare=True)
        returned = cursor.fetchall()
    # Under the append lock a stream is written whole or not at all (see append).
    wanted = Counter(event_stream)
    got = Counter(ordinal for ordinal, *_rest in returned)
    refused = {ordinal for ordinal in wanted if got[ordinal] != wanted[ordinal]}
    return [(position, version, at) for _o, position, version, at in returned], refused


def _copy_batch(streams: list[str], expected: list[int | None], event_stream: list[int],
                types: list[str], data: list[str], metadata: list[str]) -> Written | None:
    """Reserve, then COPY, inside a savepoint; or None when the unique (stream, version)
    index refused a row (one written without the append lock, or a transaction whose
    snapshot predates the lock), the savepoint rolled back for ``_insert_batch`` to decide
    per stream.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_RESERVE, [APPEND_LOCK_KEY, json.dumps(streams), _int_array(expected),
                                  _int_array(event_stream)], prepare=True, binary=True)
        reserved = cursor.fetchone()
    assert reserved is not None  # the function returns one row
    current, positions, at = reserved
    positions.sort()
    refused = {ordinal for ordinal, (want, have) in enumerate(zip(expected, current,
                                                                  strict=True), 1)
               if want is not None and want != have}
    version = [0, *current]  # by ordinal
    rows: list[BatchRow] = []
    copied: list[tuple[int, str, int, str, str, str]] = []
    next_position = iter(positions)
    for ordinal, type_, text, meta in zip(event_stream, types, data, metadata, strict=True):
        if ordinal in refused:
            continue
        version[ordinal] = v = version[ordinal] + 1
        position = next(next_position)
        rows.append((position, v, None if rows else at))
        copied.append((position, streams[ordinal - 1], v, type_, text, meta))
    if not copied:
        return rows, refused
    try:
        with transaction.atomic(), connection.wrap_database_errors, \
                psycopg.Cursor(connection.connection) as cursor, cursor.copy(_COPY) as copy:
            write_row = copy.write_row
            for row in copied:
                write_row(row)
    except IntegrityError:
        return None
    return rows, refused


def stream_version(stream_id: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(max(version), 0) FROM eventstore_event WHERE stream_id = %s",
            [stream_id],
        )
        return cursor.fetchone()[0]


_COLUMNS = "position, stream_id, version, type, data, metadata, recorded_at"


def read_stream(stream_id: str, *, from_version: int = 1) -> list[RecordedEvent]:
    """One stream's events in version order, from ``from_version`` on."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM eventstore_event"
            " WHERE stream_id = %s AND version >= %s ORDER BY version",
            [stream_id, from_version],
        )
        return [_recorded(row) for row in cursor.fetchall()]


def read_all(
    *, after: int = 0, limit: int = 1000, types: Sequence[str] | None = None
) -> list[RecordedEvent]:
    """Up to ``limit`` events with position > ``after``, in position order.

    Safe to follow: a caller that continues from the last position it saw never misses an
    event committed later (see the module docstring).
    """
    sql = f"SELECT {_COLUMNS} FROM eventstore_event WHERE position > %s"
    params: list[Any] = [after]
    if types is not None:
        sql += " AND type = ANY(%s)"
        params.append(list(types))
    sql += " ORDER BY position LIMIT %s"
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [_recorded(row) for row in cursor.fetchall()]


def iter_all(
    *, after: int = 0, batch_size: int = 5000, types: Sequence[str] | None = None
) -> Iterator[list[RecordedEvent]]:
    """``read_all`` in batches until the end of the log as it is now."""
    while batch := read_all(after=after, limit=batch_size, types=types):
        yield batch
        after = batch[-1].position


def count(*, types: Sequence[str] | None = None) -> int:
    """How many events the log holds (of ``types``, when given)."""
    sql, params = "SELECT count(*) FROM eventstore_event", []
    if types is not None:
        sql += " WHERE type = ANY(%s)"
        params.append(list(types))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def last_position() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(position), 0) FROM eventstore_event")
        return cursor.fetchone()[0]


def lock_appends() -> None:
    """Block every other append until the current transaction ends (used by rebuilds)."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_appends must run inside transaction.atomic()")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_KEY])


def _recorded(row: tuple[Any, ...]) -> RecordedEvent:
    position, stream_id, version, type_, data, metadata, recorded_at = row
    # Django's psycopg setup hands jsonb over as text (JSONField decodes it itself).
    if isinstance(data, str):
        data = json.loads(data)
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return RecordedEvent(position, stream_id, version, type_, data, metadata, recorded_at)


__all__ = [
    "ConcurrencyError",
    "count",
    "Expect",
    "NewEvent",
    "RecordedEvent",
    "Append",
    "AppendOutcome",
    "append",
    "append_batch",
    "iter_all",
    "last_position",
    "lock_appends",
    "read_all",
    "read_stream",
    "stream_version",
]
