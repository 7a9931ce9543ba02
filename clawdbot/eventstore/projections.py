"""Projections: read-model tables computed from the log, and the runner that feeds them.

A projection is a set of pure functions of events, ``apply_<event_type>`` (dots and dashes
in the type become underscores), over tables it alone writes. Two ways to run one:

* **inline** (default): applied by ``store.append`` inside the appending transaction, so
  the tables are always exactly as current as the log. No checkpoint is needed.
* **tracked** (``inline = False``): a follower calls ``catch_up(name)``, which applies
  batches read after the projection's checkpoint and stores the new checkpoint in the same
  transaction as the rows, so each event is applied exactly once even across crashes.

``rebuild(name)`` empties a projection's tables and replays the whole log into them in one
transaction holding the append lock: readers see the old tables until it commits, writers
wait, and the result is what the live projection would hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from django.db import connection, models, transaction

from clawdbot.eventstore import store
from clawdbot.eventstore.models import ProjectionCheckpoint
from clawdbot.eventstore.store import RecordedEvent


class Projection:
    """Base class. Subclasses set ``name`` and ``models`` and define ``apply_<type>``."""

    name: ClassVar[str]
    models: ClassVar[tuple[type[models.Model], ...]]
    inline: ClassVar[bool] = True

    def handler(self, event_type: str) -> Callable[[RecordedEvent], None] | None:
        attr = "apply_" + event_type.replace(".", "_").replace("-", "_")
        return getattr(self, attr, None)

    def handled_types(self) -> list[str] | None:
        """Event types worth reading on a rebuild; ``None`` means every event."""
        return None

    def apply_batch(self, events: Sequence[RecordedEvent]) -> None:
        """Apply events in position order. Override to write a batch in fewer statements."""
        for event in events:
            if handler := self.handler(event.type):
                handler(event)

    def reset(self) -> None:
        """Empty the projection's tables (inside the rebuild transaction)."""
        tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in self.models)
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables}")


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


def apply_inline(events: Sequence[RecordedEvent]) -> None:
    """Apply new events to every inline projection (called by ``store.append``)."""
    for projection in _registry.values():
        if projection.inline:
            projection.apply_batch(events)


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
            projection.apply_batch(batch)
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
    applied = 0
    with transaction.atomic(durable=True):
        store.lock_appends()
        types = projection.handled_types()
        total = store.count(types=types)
        projection.reset()
        for batch in store.iter_all(batch_size=batch_size, types=types):
            projection.apply_batch(batch)
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
