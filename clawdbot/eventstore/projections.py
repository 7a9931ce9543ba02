"""Projections: read-model tables computed from the log, and the runner that feeds them.

The contract, the same for every projection: a ``Projection`` names the event ``types`` it
reads (``None``: every event) and the tables it alone writes (``models``), and defines one
batch function, ``apply(events)``. The runner calls ``apply`` with events of those types
only, in position order, in batches of any size (one append's events, a worker's batch of
attempts, 5000 events of a rebuild). ``apply`` is a function of those events and of the
projection's own tables, never of the clock or other state, so a replay reproduces what
live application wrote. It is a batch function because bulk SQL pays: every projection
here writes a batch in one or a few statements.

Two ways to run one:

* **inline** (default): applied by ``record`` / ``record_batch`` inside the appending
  transaction, so the tables are always exactly as current as the log. No checkpoint.
* **tracked** (``inline = False``): a follower calls ``catch_up(name)``, which applies
  batches read after the projection's checkpoint and stores the new checkpoint in the same
  transaction as the rows, so each event is applied exactly once even across crashes.

``record`` is the way services write events: ``store.append`` (which only stores), then the
inline projections. ``rebuild(name)`` empties a projection's tables and replays the whole
log into them in one transaction holding the append lock: readers see the old tables until
it commits, writers wait, and the result is what the live projection would hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from django.db import connection, models, transaction

from clawdbot.eventstore import store
from clawdbot.eventstore.models import ProjectionCheckpoint
from clawdbot.eventstore.store import (
    Append,
    AppendOutcome,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
)


class Projection:
    """Base class: set ``name``, ``models`` and ``types``, define ``apply``."""

    name: ClassVar[str]
    models: ClassVar[tuple[type[models.Model], ...]]
    #: The event types ``apply`` is given; ``None`` means every event.
    types: ClassVar[frozenset[str] | None]
    inline: ClassVar[bool] = True

    def apply(self, events: Sequence[RecordedEvent]) -> None:
        """Apply a non-empty batch of events of ``types``, in position order."""
        raise NotImplementedError

    def reset(self) -> None:
        """Empty the projection's tables (inside the rebuild transaction)."""
        tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in self.models)
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables}")


def _apply(projection: Projection, events: Sequence[RecordedEvent]) -> None:
    types = projection.types
    chosen = events if types is None else [e for e in events if e.type in types]
    if chosen:
        projection.apply(chosen)


_registry: dict[str, Projection] = {}


def register(projection: Projection) -> None:
    _registry[projection.name] = projection


def registered() -> list[Projection]:
    return list(_registry.values())


def get(name: str) -> Projection:
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise KeyError(f"no projection named {name!r} (known: {known})") from None


def record(
    stream_id: str, events: Sequence[NewEvent], *, expected_version: ExpectedVersion
) -> list[RecordedEvent]:
    """Append ``events`` and apply the inline projections to them, in the caller's
    transaction (see ``store.append`` for the precondition and ``ConcurrencyError``)."""
    recorded = store.append(stream_id, events, expected_version=expected_version)
    _apply_inline(recorded)
    return recorded


def record_batch(appends: Sequence[Append]) -> list[RecordedEvent]:
    """``record`` for several streams, in one ``store.append_batch`` call: every append,
    then each inline projection once for the whole batch. A ``ConcurrencyError`` (the
    first stream not at its expected version) leaves the other streams stored but
    unprojected: the caller must let it roll the transaction back (a single ``record``
    writes nothing, so it may go on)."""
    outcomes = record_each(appends)
    for outcome in outcomes:
        if outcome.conflict is not None:
            raise outcome.conflict
    return [r for outcome in outcomes for r in outcome.recorded]


def record_each(appends: Sequence[Append]) -> list[AppendOutcome]:
    """``record_batch`` where each stream stands alone: a stream not at its expected
    version is left out (its outcome names the conflict), the others are stored and
    projected. One ``store.append_batch`` call, one projection pass."""
    outcomes = store.append_batch(appends)
    _apply_inline(sorted((r for o in outcomes for r in o.recorded), key=lambda r: r.position))
    return outcomes


def _apply_inline(recorded: Sequence[RecordedEvent]) -> None:
    if recorded:
        for projection in _registry.values():
            if projection.inline:
                _apply(projection, recorded)


def catch_up(name: str, *, batch_size: int = 5000, max_batches: int | None = None) -> int:
    """Apply what a tracked projection has not seen yet; return how many events were read."""
    projection = get(name)
    seen = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        with transaction.atomic():
            checkpoint, _ = ProjectionCheckpoint.objects.select_for_update().get_or_create(
                name=name
            )
            batch = store.read_all(after=checkpoint.position, limit=batch_size)
            if not batch:
                break
            _apply(projection, batch)
            checkpoint.position = batch[-1].position
            checkpoint.save(update_fields=["position", "updated_at"])
        seen += len(batch)
        batches += 1
    return seen


def rebuild(
    name: str,
    *,
    batch_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Replay the whole log into a projection's emptied tables; return events applied.

    ``progress(done, total)`` is called after each batch, counting events to replay.
    """
    projection = get(name)
    types = sorted(projection.types) if projection.types is not None else None
    applied = 0
    with transaction.atomic(durable=True):
        store.lock_appends()
        total = store.count(types=types)
        projection.reset()
        for batch in store.iter_all(batch_size=batch_size, types=types):
            _apply(projection, batch)
            applied += len(batch)
            if progress:
                progress(applied, total)
        ProjectionCheckpoint.objects.update_or_create(
            name=name, defaults={"position": store.last_position()}
        )
    return applied


def table_snapshot(projection: Projection) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of ``projection``, ordered: for comparing two states."""
    snapshot: dict[str, list[tuple[object, ...]]] = {}
    for model in projection.models:
        fields: Iterable[str] = [f.attname for f in model._meta.concrete_fields]
        snapshot[model._meta.db_table] = list(
            model._default_manager.order_by("pk").values_list(*fields)
        )
    return snapshot
