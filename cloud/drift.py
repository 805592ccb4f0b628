"""What the cloud knows of each watched slot's drift: one verdict per gateway and slot, read by the
``model_drift`` alert rule, the API (``GET /gateways/{id}/drift``, ``GET /lines/{line}/drift``)
and through it the console.

Two sources report it, and neither is sound alone:

- telemetry's ``drift`` list is the gateway's current verdict for every watched slot, sent every
  few seconds; but it is best-effort (a lost sample is replaced by the next), names the moved
  signals without their direction, and says neither which model nor since when;
- ``model_drift`` events are durable (the outbox keeps each until ingest stored it) and carry
  the details, but only at transitions: an OTA swap starts the new release on a fresh monitor
  without a "cleared" event, so a slot's last event may speak of a model that no longer serves.

So per slot the newer report decides the state (both carry the gateway's own clock): the latest
event when it is newer than the latest sample (a confirmation reaches the cloud before the next
sample does), else the sample, in which a slot left out is no longer watched. The slot's latest
event, when it reports the same state, gives the directions, the score ratio, the model and since
when. A gateway that never sent a sample is judged on its events alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.db.models import Event, Gateway
from protocol.drift import DRIFT_EVENT_KIND, DRIFT_STATES, SCORE_SIGNAL

# A signal's name in an operator's words (protocol.drift names them). The input signals are
# grouped by what changed on the line; the model's own outputs (a defect score, a note's
# confidence as its score, a parcel detector's figures) are named one by one. A signal not listed
# here (a newer agent's) counts as an input under its own name.
PLAIN_WORDS = {"brightness": "light", "contrast": "light", "warmth": "colour", "tint": "colour",
               "sharpness": "focus", "centroid": "wording", SCORE_SIGNAL: "scores",
               "confidence": "confidence", "detections": "parcels found",
               "unread": "unread barcodes"}  # fmt: skip
_GROUP_ORDER = ("light", "colour", "focus", "wording")
_OUTPUT_SIGNALS = (SCORE_SIGNAL, "confidence", "detections", "unread")
LEVELS: dict[str, int] = {
    state: level for level, state in enumerate(DRIFT_STATES)
}  # ok 0, suspected 1, confirmed 2


@dataclass(frozen=True, slots=True)
class Movement:
    """A signal over its threshold and which way it went (None: not known, telemetry only)."""

    signal: str
    direction: str | None = None


@dataclass(frozen=True, slots=True)
class SlotVerdict:
    """One slot's drift as the cloud last heard it."""

    gateway_id: str
    slot: str
    state: str
    reported_at: datetime
    model: str | None = None
    moved: tuple[Movement, ...] = ()
    cause: str | None = None
    score_ratio: float | None = None
    ratio: float | None = None  # largest statistic / threshold at the last evaluation (telemetry)
    frames: int | None = None
    window: int | None = None
    since: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def level(self) -> int:
        """0 ok, 1 suspected, 2 confirmed (an unknown state counts as ok)."""
        return LEVELS.get(self.state, 0)

    @property
    def summary(self) -> str:
        """What moved in plain words ('light/colour moved (warmth up), scores up 1.4x')."""
        return movement_words(self.moved, self.score_ratio)


def parse_moved(text: object) -> tuple[Movement, ...]:
    """An event's ``moved`` ('warmth:up,score:up') as movements."""
    if not isinstance(text, str):
        return ()
    out = []
    for part in text.split(","):
        name, _, direction = part.strip().partition(":")
        if name:
            out.append(Movement(name, direction or None))
    return tuple(out)


def movement_words(moved: Sequence[Movement], score_ratio: float | None = None) -> str:
    """'light/colour moved (warmth up, brightness up), scores up 3.1x', or 'nothing moved'."""
    looks = [m for m in moved if m.signal not in _OUTPUT_SIGNALS]
    parts = []
    if looks:
        groups = {PLAIN_WORDS.get(m.signal, m.signal) for m in looks}
        named = [g for g in _GROUP_ORDER if g in groups] + sorted(groups - set(_GROUP_ORDER))
        each = ", ".join(f"{m.signal} {m.direction}" if m.direction else m.signal for m in looks)
        parts.append(f"{'/'.join(named)} moved ({each})")
    for m in moved:
        if m.signal in _OUTPUT_SIGNALS:
            words = f"{PLAIN_WORDS[m.signal]} {m.direction or 'moved'}"
            if m.signal == SCORE_SIGNAL and score_ratio is not None:
                words += f" {score_ratio:.1f}x"
            parts.append(words)
    return ", ".join(parts) or "nothing moved"


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _latest_events(session: Session, gateway_ids: Sequence[str]) -> dict[tuple[str, str], Event]:
    """The newest model_drift event of each (gateway, slot)."""
    slot = Event.details["slot"].as_string()
    ranked = (
        select(
            Event.id,
            func.row_number()
            .over(partition_by=(Event.gateway_id, slot), order_by=(Event.timestamp.desc(), Event.id.desc()))
            .label("rank"),
        )
        .where(Event.gateway_id.in_(gateway_ids), Event.kind == DRIFT_EVENT_KIND)
        .subquery()
    )
    rows = session.scalars(select(Event).join(ranked, ranked.c.id == Event.id).where(ranked.c.rank == 1))
    return {(e.gateway_id, str(e.details.get("slot"))): e for e in rows if e.details.get("slot")}


def _from_event(event: Event, base: SlotVerdict | None = None) -> SlotVerdict:
    """A verdict with the event's words; on ``base`` (the sample's verdict) when given."""
    d = event.details
    state = str(d.get("state") or "ok")
    window = _number(d.get("window"))
    return SlotVerdict(
        gateway_id=event.gateway_id,
        slot=str(d["slot"]),
        state=base.state if base else state,
        reported_at=base.reported_at if base else event.timestamp,
        model=str(d["model"]) if d.get("model") else None,
        moved=parse_moved(d.get("moved")),
        cause=str(d.get("cause") or "") or None,
        score_ratio=_number(d.get("score_ratio")),
        ratio=base.ratio if base else None,
        frames=base.frames if base else None,
        window=int(window) if window is not None else None,
        since=event.timestamp,
        details=dict(d),
    )


def _from_sample(gateway: Gateway, entry: dict[str, Any], at: datetime) -> SlotVerdict:
    moved = entry.get("moved") or ()
    return SlotVerdict(
        gateway_id=gateway.id,
        slot=str(entry["slot"]),
        state=str(entry.get("state") or "ok"),
        reported_at=at,
        moved=tuple(Movement(str(name)) for name in moved),
        ratio=_number(entry.get("ratio")),
        frames=int(entry["frames"]) if isinstance(entry.get("frames"), int) else None,
    )


def _loaded_model(gateway: Gateway, slot: str) -> str | None:
    for m in gateway.models or ():
        if isinstance(m, dict) and m.get("slot") == slot and m.get("name"):
            return f"{m['name']} {m.get('version') or ''}".strip()
    return None


def _sample_time(sample: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(sample["timestamp"]))
    except (KeyError, ValueError):
        return None


def gateway_verdicts(session: Session, gateways: Sequence[Gateway]) -> dict[str, list[SlotVerdict]]:
    """Each gateway's slot verdicts by gateway id, slots in name order (empty: nothing watched)."""
    events = _latest_events(session, [g.id for g in gateways]) if gateways else {}
    out: dict[str, list[SlotVerdict]] = {}
    for gw in gateways:
        sample = gw.telemetry if isinstance(gw.telemetry, dict) else None
        # The sample's own time, by the gateway's clock like its events' (telemetry_at is when the
        # cloud received it): which of the two is newer is the gateway's order, whatever its skew.
        sampled_at = _sample_time(sample) if sample is not None and "drift" in sample else None
        verdicts: dict[str, SlotVerdict] = {}
        if sampled_at is not None and sample is not None:
            for entry in sample.get("drift") or ():
                if isinstance(entry, dict) and entry.get("slot"):
                    verdicts[str(entry["slot"])] = _from_sample(gw, entry, sampled_at)
        for (gateway_id, slot), event in events.items():
            if gateway_id != gw.id:
                continue
            known = verdicts.get(slot)
            if sampled_at is None or event.timestamp > sampled_at:
                verdicts[slot] = _from_event(event)  # newer than the sample: the event decides
            elif known is not None and str(event.details.get("state")) == known.state:
                verdicts[slot] = _from_event(event, known)  # same episode: its words and start
        out[gw.id] = [_with_model(gw, v) for _, v in sorted(verdicts.items())]
    return out


def _with_model(gateway: Gateway, verdict: SlotVerdict) -> SlotVerdict:
    if verdict.model:
        return verdict
    return replace(verdict, model=_loaded_model(gateway, verdict.slot))


def line_gateways(session: Session, line: str) -> list[Gateway]:
    """The gateways serving ``line``, by id."""
    return list(session.scalars(select(Gateway).where(Gateway.line == line).order_by(Gateway.id)))


def event_words(details: dict[str, Any]) -> str:
    """A model_drift event's details as one line for the event list: slot, model, what moved (with
    the moved signals' statistics), the flagged share and the window; the API keeps them all."""
    parts = [f"slot {details['slot']}" if details.get("slot") else "", str(details.get("model") or "")]
    moved = parse_moved(details.get("moved"))
    if moved:
        parts.append(movement_words(moved, _number(details.get("score_ratio"))))
        readings = []
        for m in moved:
            stat, limit = (
                _number(details.get(f"{m.signal}_statistic")),
                _number(details.get(f"{m.signal}_threshold")),
            )
            if stat is not None and limit is not None:
                readings.append(f"{m.signal} {stat:.2f} > {limit:.2f}")
        if readings:
            parts.append("statistic > threshold: " + ", ".join(readings))
    flagged, usual = _number(details.get("flagged_share")), _number(details.get("reference_flagged_share"))
    if flagged is not None:
        parts.append(f"{flagged:.0%} flagged" + (f" vs {usual:.0%} at fit time" if usual is not None else ""))
    window = _number(details.get("window"))
    if window is not None:
        parts.append(f"{window:.0f}-frame window")
    return " · ".join(p for p in parts if p) or "-"
