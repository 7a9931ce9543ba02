"""Outbox triage in the admin: targets, deliveries (dead letters first), emitted milestones.

Requeue, discard and pause/resume go through the same services as the commands, each with
a reason form, so every operator action is an event naming who and why; each needs the
change permission on its model.
"""

from orchestrator_app.admin import deliveries, milestones, targets

__all__ = ["deliveries", "milestones", "targets"]
