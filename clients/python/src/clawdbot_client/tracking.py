"""Task outcomes as milestones: the three events of one run, built the same way for
``Client.track``, ``Client.milestone``, their asyncio forms and the django-q2 hook."""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._contract import validate_milestone

#: How much of a traceback a ``blocked`` milestone carries (the last frames, the error).
TRACEBACK_LIMIT = 4000


@dataclass(frozen=True)
class Run:
    """One run of a tracked piece of work. ``run_id`` makes the three keys, so sending
    the same phase of the same run twice is never a second milestone."""

    milestone_id: str
    scope: str
    claim: str
    run_id: str
    evidence: Sequence[Mapping[str, Any]] = ()
    next_action: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)

    def key(self, phase: str) -> str:
        return f"{self.run_id}-{phase}"

    def started(self) -> dict[str, Any]:
        return self._event("on-track", self.claim,
                           self.next_action or f"Await the outcome of {self.milestone_id}.",
                           self.evidence)

    def completed(self) -> dict[str, Any]:
        return self._event("completed", f"Completed: {self.claim}",
                           f"Nothing further for {self.milestone_id}.", self.evidence)

    def blocked(self, exc: BaseException) -> dict[str, Any]:
        return self.blocked_from(type(exc).__name__, str(exc), traceback_summary(exc),
                                 _where(exc))

    def blocked_from(self, type_name: str, message: str, summary: str,
                     where: str) -> dict[str, Any]:
        """``blocked`` with ``log`` evidence: where it failed, the error, the traceback."""
        error = f"{type_name}: {message}" if message else type_name
        evidence = {"type": "log", "path": where or self.milestone_id,
                    "summary": error[:500], "ref": summary[-TRACEBACK_LIMIT:]}
        return self._event("blocked", f"Failed: {self.claim}",
                           f"Investigate the failure of {self.milestone_id} ({error[:200]}).",
                           [evidence, *self.evidence])

    def _event(self, risk: str, claim: str, next_action: str,
               evidence: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {"milestoneId": self.milestone_id, "scope": self.scope, "claim": claim,
                "evidence": [dict(e) for e in evidence] or [self._default_evidence()],
                "riskStatus": risk, "nextAction": next_action}

    def _default_evidence(self) -> dict[str, str]:
        return {"type": "log", "path": self.milestone_id, "summary": f"run {self.run_id}"}

    def check(self) -> None:
        """Raise ``MilestoneInvalid`` now if this run's milestones could never be sent."""
        validate_milestone({**self.started(), "timestampUtc": "2026-01-01T00:00:00.000Z"})


def traceback_summary(exc: BaseException) -> str:
    """The exception's traceback as Python prints it, without the chained causes' noise
    beyond the last ``TRACEBACK_LIMIT`` characters."""
    return "".join(traceback.format_exception(exc))[-TRACEBACK_LIMIT:]


def _where(exc: BaseException) -> str:
    """``file:line in function`` of the frame that raised."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    frame = traceback.extract_tb(tb)[-1]
    return f"{frame.filename}:{frame.lineno} in {frame.name}"

