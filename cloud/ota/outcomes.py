"""What an abort did to each started gateway: sent back, left as is, never left its version, or
none of these as it had rolled back by itself already.

The outcome frozen at the abort is the gateway's status at that moment (often "pending" during its
health window), which read as if the gateway were still on its way to the new version although the
abort then sent it back. Each outcome says what the abort did and keeps that status as a detail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cloud.db.models import Rollout

SENT_BACK = "sent_back"
LEFT_AS_IS = "left_as_is"
NEVER_LEFT = "never_left"
# The gateway's own health window failed and it went back before the abort: the abort changed nothing.
ROLLED_BACK_ITSELF = "rolled_back"
ABORT_OUTCOMES = (SENT_BACK, LEFT_AS_IS, NEVER_LEFT, ROLLED_BACK_ITSELF)
BAD = ("failed", "unhealthy")


def _was(final: Mapping[str, Any]) -> str:
    """The status at the abort, with the reported phase: "pending · health_window"."""
    return " · ".join(str(part) for part in (final.get("status"), final.get("phase")) if part)


def mark_aborted(row: Rollout, sent: Mapping[str, str], skipped: Mapping[str, str]) -> None:
    """Rewrite the frozen outcome of each started gateway of the aborted ``row``.

    ``sent``: gateway -> the version offered back ("defect-cnn 1.0"); ``skipped``: gateway -> why
    it was left as is. A gateway that failed before running the new version never left the one it
    ran: whatever the abort offered it, nothing changed on it.
    """
    plan = dict(row.plan)
    for gw, entry in row.plan.items():
        final = entry.get("final")
        if not entry.get("started") or not final:
            continue
        status, active = final.get("status"), final.get("active_version")
        why_failed = final.get("reason") or "the install failed"
        if status == "failed" and active != row.version and final.get("phase") == "rolled_back":
            outcome, reason = ROLLED_BACK_ITSELF, f"back on {active} by itself: {why_failed}"
        elif status == "failed" and active != row.version:
            left = f"never left {active}" if active else f"never installed {row.version}"
            outcome, reason = NEVER_LEFT, f"{left}: {why_failed}"
        elif gw in sent:
            outcome, reason = SENT_BACK, f"sent back to {sent[gw]} (rollback offered); was {_was(final)}"
        else:
            why = skipped.get(gw, "no rollback offered")
            outcome, reason = LEFT_AS_IS, f"left as is: {why}; was {_was(final)}"
        plan[gw] = {**entry, "final": {**final, "status": outcome, "reason": reason, "at_abort": status}}
    row.plan = plan


def judged_status(status: str, at_abort: str | None) -> str:
    """The status the rollout judged the gateway by: the one at the abort, if it was aborted."""
    return at_abort or status


def abort_counts(statuses: Iterable[str]) -> dict[str, int]:
    """How many gateways of an aborted rollout the abort sent back, left as is, or never moved."""
    items = list(statuses)
    return {name: items.count(name) for name in (*ABORT_OUTCOMES, "aborted")}


def outcome_text(counts: Mapping[str, int]) -> str:
    """The abort's effect in a line of the list: "1 sent back, 2 never left their version"."""
    parts = [f"{counts[SENT_BACK]} sent back", f"{counts[NEVER_LEFT]} never left their version"]
    if counts[ROLLED_BACK_ITSELF]:
        parts.append(f"{counts[ROLLED_BACK_ITSELF]} rolled back by itself")
    if counts[LEFT_AS_IS]:
        parts.append(f"{counts[LEFT_AS_IS]} left as is")
    if counts["aborted"]:
        # Rollouts aborted before outcomes were kept: what the abort did to them is unknown.
        parts.append(f"{counts['aborted']} not recorded")
    return ", ".join(parts)
