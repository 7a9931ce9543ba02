"""Who may call the operator API: staff holding the model permission the action needs.

The REST API asks what the admin asks (least privilege, one rule for both): a view-only
operator may read targets, deliveries and the dead-letter but not pause, resume, rotate,
change or create; an operator without a permission gets 403 naming the one missing.
Superusers hold every permission. ``manage.py migrate`` keeps two groups to hand out:
``operators`` (every permission of the pipeline's apps) and ``viewers`` (view only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

#: Apps whose permissions the ``operators`` and ``viewers`` groups hold.
PIPELINE_APPS = ("orchestrator_app", "feed_app", "eventstore")
GROUPS = {"operators": None, "viewers": "view_"}  # group -> codename prefix (None: all)


class OperatorPermission(BasePermission):
    """Staff, with the permission ``view.required[method]`` names (HEAD/OPTIONS as GET).

    A method the view does not list is refused: nothing is allowed by omission.
    """

    message = "this is for operators: a staff user's token or session"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        required: Mapping[str, str] = getattr(view, "required", {})
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        needed = required.get(method or "")
        if needed is None:
            return False
        if not user.has_perm(needed):
            raise PermissionDenied(f"this needs the {needed!r} permission")
        return True


def groups_ensure(*, using: str = "default", **_kwargs: object) -> None:
    """Create or refresh the ``operators`` and ``viewers`` groups (orchestrator_app's
    post_migrate hook). The pipeline apps' permissions are made first, since another app's
    post_migrate may not have run yet."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    for label in PIPELINE_APPS:
        create_permissions(apps.get_app_config(label), verbosity=0, using=using)

    permissions = Permission.objects.using(using).filter(
        content_type__app_label__in=PIPELINE_APPS)
    for name, prefix in GROUPS.items():
        group = Group.objects.using(using).get_or_create(name=name)[0]
        chosen = permissions if prefix is None else permissions.filter(
            codename__startswith=prefix)
        group.permissions.set(chosen)
