from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleConfig(AppConfig):
    """Templates, static files and template filters of the console (listed before the
    admin, so its ``admin/`` templates take precedence)."""

    default = True
    name = "clawdbot.console"
    label = "console"
    verbose_name = "ClawDBot console"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with the console's site as ``admin.site``."""

    default = False
    default_site = "clawdbot.console.site.ConsoleSite"
