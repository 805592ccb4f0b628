"""What the Rollout page shows (waves, health gates with measured values, gateways, log), and its feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Template

from cloud.console.api import ApiClient
from cloud.console.render import milliseconds
from protocol.messages import utcnow

ENDED = ("completed", "aborted")
# Gate name -> (column title, how its numbers read).
GATES = {
    "min_inferences": ("Inferences", "count"),
    "max_error_rate": ("Error rate", "ratio"),
    "max_p95_latency_ms": ("p95 latency", "ms"),
    "max_defect_rate_shift": ("Defect rate vs before", "ratio"),
    "max_confidence_drop": ("Confidence vs before", "ratio"),
}


def _num(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "ratio":
        return f"{100 * value:.1f}%"
    if kind == "ms":
        return milliseconds(value)  # a 0.01 ms limit must not read "0 ms"
    return f"{value:g}"


def gate_cell(gate: dict[str, Any]) -> dict[str, str]:
    """One gate as the table shows it: measured value against its limit, and a verdict class."""
    _, kind = GATES.get(gate["gate"], (gate["gate"], "count"))
    ok = gate.get("ok")
    if gate["gate"] == "min_inferences" and not ok:
        ok = None  # still counting: not a failure, just not judged yet
    cls = "na" if ok is None else ("ok" if ok else "bad")
    measured, limit = _num(gate.get("measured"), kind), _num(gate.get("limit"), kind)
    if gate["gate"] in SHIFTS:
        # The note says what the defect-rate gate judged on, or how many parts it still waits for;
        # the wait is shown, not only hovered: it is why a committed gateway is still pending.
        note = gate.get("note")
        title = "; ".join(part for part in (SHIFTS[gate["gate"]], note) if part)
        text = shift_text(gate) if ok is not None or not note else f"{shift_text(gate)} · {note}"
        return {"text": text, "cls": cls, "title": title}
    if gate["gate"] == "min_inferences":
        text = f"{measured}, at least {limit}"
        title = "health is judged once this many inferences are reported"
    elif gate.get("limit") is None:
        text, title = f"{measured} (no limit)", "this gate is off for this rollout"
    else:
        text, title = f"{measured} / max {limit}", "measured / threshold"
    return {"text": text, "cls": cls, "title": title}


# Gates that compare the new model with the old one: what the limit bounds, in words.
SHIFTS = {
    "max_defect_rate_shift": (
        "change of the defect rate since the update, either way (limit: the largest, once beyond sampling noise)"
    ),
    "max_confidence_drop": "change of mean confidence since the update (limit: the largest fall)",
}


def shift_text(gate: dict[str, Any]) -> str:
    """A comparison gate signed as now minus before, in points: "-1.1 pts: now 7.2%, before 8.3%".

    The gate judges a size (the defect-rate shift either way, the confidence drop), which alone
    would hide whether the number rose or fell.
    """
    now, before, limit = gate.get("now"), gate.get("before"), gate.get("limit")
    if now is None or before is None:
        text = f"now {_num(now, 'ratio')}, before {_num(before, 'ratio')}"
    else:
        text = f"{100 * (now - before):+.1f} pts: now {_num(now, 'ratio')}, before {_num(before, 'ratio')}"
    if limit is None:
        return f"{text} (no limit)"
    bound = "±" if gate["gate"] == "max_defect_rate_shift" else "fall of at most "
    return f"{text} · {bound}{100 * limit:.1f} pts"


def _seconds_since(at: str | None, now: datetime) -> float | None:
    return None if not at else max((now - datetime.fromisoformat(at)).total_seconds(), 0.0)


def bake_cell(r: dict[str, Any], now: datetime) -> dict[str, str]:
    """The Bake figure as the engine sees it, with a tooltip saying why.

    The engine bakes a wave only while the rollout runs and every gateway of the wave is healthy;
    it does not tick a paused rollout, and a resume starts the bake again from zero.
    """
    healthy_since = r.get("wave_healthy_since")
    if r["state"] == "completed":
        return {"text": "done", "title": "every wave baked"}
    if r["state"] == "aborted":
        return {"text": "-", "title": "the rollout was aborted"}
    if r["state"] == "paused":
        paused_at = next((e["at"] for e in reversed(r.get("events", [])) if e["kind"] == "paused"), None)
        restart = "restarts from 0 s on resume"
        if healthy_since and paused_at:
            baked = _seconds_since(healthy_since, datetime.fromisoformat(paused_at))
            return {
                "text": f"paused at {baked:.0f} s · {restart}",
                "title": "the engine does not bake a paused wave",
            }
        return {"text": f"paused · {restart}", "title": "the engine does not bake a paused wave"}
    baked = _seconds_since(healthy_since, now)
    if baked is None:
        return {"text": "-", "title": "starts once every gateway of the wave runs the new version healthily"}
    return {"text": f"{baked:.0f} s", "title": "every gateway of the wave healthy for this long"}


BAD = ("failed", "unhealthy")


def judged(g: dict[str, Any]) -> str:
    """The status a gateway was judged by: for an aborted rollout, the one it had at the abort."""
    status: str = g.get("at_abort") or g["status"]
    return status


def gate_cells(r: dict[str, Any], g: dict[str, Any]) -> dict[str, dict[str, str]]:
    """A gateway's gate cells; green verdicts of a gateway still pending at an abort turn grey.

    Its health window never ended, so no gate was judged for good: green would claim a judgement
    that never happened.
    """
    cells = {c["gate"]: gate_cell(c) for c in g.get("gates", [])}
    if r["state"] == "aborted" and judged(g) == "pending":
        for cell in cells.values():
            if cell["cls"] == "ok":
                cell.update(cls="na", title="not judged: the rollout was aborted during the health window")
    return cells


def failure_row(r: dict[str, Any], current: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The wave gate: failed or unhealthy gateways of the current wave against the limit.

    An aborted rollout's wave was never judged through unless the gate itself tripped: it reads
    red when it did, grey otherwise, never green.
    """
    bad = sum(1 for _, g in current if judged(g) in BAD)
    ratio = bad / len(current) if current else None
    limit = r["thresholds"].get("max_failure_ratio")
    tripped = ratio is not None and limit is not None and ratio > limit
    cls, note = ("bad" if tripped else "ok"), ""
    if r["state"] == "aborted" and not tripped:
        cls, note = "na", "not judged: the rollout was aborted before the wave was judged through"
    return {"bad": bad, "members": len(current), "ratio": ratio, "limit": limit, "cls": cls, "note": note}


def rollout_context(r: dict[str, Any]) -> dict[str, Any]:
    """The page's view of one rollout as the API returned it (``GET /rollouts/{id}``)."""
    now = datetime.fromisoformat(r["as_of"]) if r.get("as_of") else utcnow()
    gateways: dict[str, dict[str, Any]] = r["gateways"]
    waves = []
    for number, size in enumerate(r["waves"], start=1):
        members = [g for g in gateways.values() if g["wave"] == number]
        waves.append(
            {
                "number": number,
                "size": size,
                "members": len(members),
                "installed": sum(1 for g in members if g["status"] == "installed"),
                "bad": sum(1 for g in members if judged(g) in BAD),
                "current": number == r["wave"] + 1 and r["state"] not in ENDED,
            }
        )
    current = sorted((gw, g) for gw, g in gateways.items() if g["wave"] == r["wave"] + 1)
    thresholds = r["thresholds"]
    return {
        "r": r,
        "ended": r["state"] in ENDED,
        "waves": waves,
        "total": len(gateways),
        "gate_names": [(name, title) for name, (title, _) in GATES.items()],
        "current": [(gw, g, gate_cells(r, g)) for gw, g in current],
        "failure": failure_row(r, current),
        # An ended rollout's last wave no longer runs: its age would only keep growing.
        "wave_age_s": None if r["state"] in ENDED else _seconds_since(r.get("wave_started_at"), now),
        "bake": bake_cell(r, now),
        "install_timeout_s": thresholds.get("install_timeout_s"),
        "live": f"/console/rollouts/{quote(r['id'], safe='')}/events",
    }


async def load(api: ApiClient, rollout_id: str) -> dict[str, Any]:
    """The rollout page's context, read through the API as the user."""
    return rollout_context(await api.get(f"/rollouts/{quote(rollout_id, safe='')}"))


PARTS = ("summary", "waves", "gates", "gateways", "events")


class RolloutFeed:
    """Successive updates of one rollout for its live stream: state plus the fragments that changed."""

    def __init__(self, rollout_id: str, parts: Template) -> None:
        self.rollout_id = rollout_id
        self._parts = parts.module  # the macros of rollout_parts.html, shared with the page
        self._sent: dict[str, str] = {}
        self._state: str | None = None

    async def tick(self, api: ApiClient) -> dict[str, Any] | None:
        """The rollout's state and changed fragments (None: nothing changed since the last tick)."""
        ctx = await load(api, self.rollout_id)
        parts = {name: str(getattr(self._parts, name)(ctx)) for name in PARTS}
        changed = {k: v for k, v in parts.items() if self._sent.get(k) != v}
        self._sent.update(changed)
        state = ctx["r"]["state"]
        if not changed and state == self._state:
            return None
        self._state = state
        return {"state": state, "ended": ctx["ended"], "parts": changed}


TABLE = "table"  # the macro of rollouts_parts.html that draws the list


class RolloutsFeed:
    """Successive updates of the Rollouts list for its live stream: the table, when it changed."""

    def __init__(self, parts: Template) -> None:
        self._parts = parts.module  # the macros of rollouts_parts.html, shared with the page
        self._sent: str | None = None

    async def tick(self, api: ApiClient) -> dict[str, Any] | None:
        """The rollouts' table and each one's state (None: nothing changed since the last tick)."""
        rows: list[dict[str, Any]] = await api.get("/rollouts")
        table = str(getattr(self._parts, TABLE)(rows))
        if table == self._sent:
            return None
        self._sent = table
        return {"parts": {"rollouts": table}, "states": {r["id"]: r["state"] for r in rows}}
