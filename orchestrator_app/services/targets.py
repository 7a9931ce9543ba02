"""Targets' settings, changed by operators (the REST API, SPEC §7; the admin).

Each change is an event on the target's stream (``outbox.target_configured``): who made
it, which fields, and the fingerprints of the secrets, never a secret. The target row is
the settings now; its secrets are encrypted at rest (``clawdbot.encryption``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from clawdbot.contract import parse_secret_list
from clawdbot.errors import DomainError
from clawdbot.eventstore import projections
from clawdbot.eventstore.store import Expect
from orchestrator_app import events as ev
from orchestrator_app.exceptions import UnknownTarget
from orchestrator_app.models import Target

log = logging.getLogger(__name__)

#: The settings an operator may change (model field names).
SETTINGS = ("url", "is_active", "legacy_secrets", "webhook_secrets", "retry_schedule",
            "timeout_s", "supports_batch")
SECRETS = ("legacy_secrets", "webhook_secrets")
#: Secrets a target holds at most (the first signs; the rest are kept so that a rotation
#: can be undone): rotating past it asks to remove old ones first.
MAX_SECRETS = 5


class TargetInvalid(DomainError):
    status_code = 400


class TargetExists(DomainError):
    status_code = 409


def fingerprints(secrets: str) -> list[str]:
    """The last four characters of each secret, the signing one first; never more."""
    return [f"…{s[-4:]}" for s in parse_secret_list(secrets)]


def _invalid(exc: ValidationError) -> TargetInvalid:
    errors = {name: [str(m) for m in messages]
              for name, messages in exc.message_dict.items()}
    return TargetInvalid(f"invalid target: {', '.join(sorted(errors))}", errors=errors)


def target_configured_record(target: Target, *, actor: str, change: str, fields: list[str]
                             ) -> None:
    """The event of a change to ``target`` (already saved, in this transaction)."""
    data: dict[str, Any] = {"target": target.name, "actor": actor, "change": change,
                            "fields": fields}
    for name in SECRETS:
        if name in fields:
            data[f"{name}Fingerprints"] = fingerprints(getattr(target, name))
    projections.record(ev.target_stream(target.name),
                       [ev.event(ev.TARGET_CONFIGURED, actor, **data)],
                       expected_version=Expect.ANY)
    log.info("target %s %s by %s: %s", target.name, change, actor or "an operator",
             ", ".join(fields) or "no field")


def _save(target: Target, values: Mapping[str, Any], *, exclude: tuple[str, ...] = ()
          ) -> list[str]:
    changed = [name for name in SETTINGS if name in values and getattr(target, name) !=
               values[name]]
    for name in changed:
        setattr(target, name, values[name])
    try:
        target.full_clean(exclude=list(exclude))
    except ValidationError as exc:
        raise _invalid(exc) from None
    target.save()
    return changed


def target_create(*, name: str, values: Mapping[str, Any], actor: str) -> Target:
    with transaction.atomic(durable=True):
        target = Target(name=name)
        try:
            target.full_clean(exclude=[*SETTINGS], validate_unique=False)  # the name
        except ValidationError as exc:
            raise _invalid(exc) from None
        try:
            with transaction.atomic():
                fields = _save(target, values, exclude=("name",))
        except IntegrityError:
            raise TargetExists(f"a target named {name!r} exists") from None
        target_configured_record(target, actor=actor, change="created", fields=fields)
    return target


def _locked(name: str) -> Target:
    try:
        return Target.objects.select_for_update().get(name=name)
    except Target.DoesNotExist:
        raise UnknownTarget(f"no target named {name!r}") from None


def target_update(*, name: str, values: Mapping[str, Any], actor: str) -> Target:
    with transaction.atomic(durable=True):
        target = _locked(name)
        fields = _save(target, values, exclude=("name",))
        if fields:
            target_configured_record(target, actor=actor, change="changed", fields=fields)
    return Target.objects.get(pk=target.pk)


def target_rotate_secrets(*, name: str, secrets: Mapping[str, str], actor: str) -> Target:
    """Put each new secret first: it alone signs from now on, so the receiver must accept
    it already (docs/OPERATIONS.md). The old ones stay after it, not signing, until a
    change that names the secrets to keep removes them."""
    with transaction.atomic(durable=True):
        target = _locked(name)
        values = {}
        for field, secret in secrets.items():
            held = parse_secret_list(getattr(target, field))
            if secret in held:
                held.remove(secret)
            if len(held) + 1 > MAX_SECRETS:
                raise TargetInvalid(
                    f"target {name!r} holds {len(held)} {field.replace('_', ' ')}: remove old "
                    f"ones first (at most {MAX_SECRETS})", errors={field: ["too many"]})
            values[field] = ",".join([secret, *held])
        fields = _save(target, values, exclude=("name",))
        target_configured_record(target, actor=actor, change="secrets rotated", fields=fields)
    return Target.objects.get(pk=target.pk)
