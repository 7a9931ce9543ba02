"""The operator console: the admin site branded "ClawDBot operations", its overview, and
the templates, styles and template filters the outbox and feed admin screens share."""
