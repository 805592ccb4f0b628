"""Storing decoded messages in one transaction, and computing the cumulative acknowledgements.

These functions hold the ingest logic; the MQTT worker only feeds them and publishes acks. Tests
and the API's seeding use them directly.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.dialect import insert_ignore, table_of
from cloud.db.models import (
    DEAD_LETTER_PAYLOAD_BYTES,
    DeadLetter,
    Event,
    Gateway,
    GatewayReported,
    GatewayStream,
    Result,
)
from cloud.ingest.bulk import insert_results
from cloud.ingest.decode import Decoded, Inbound, Rejected, classify
from cloud.ingest.event_rows import event_item_rows
from cloud.ingest.lines import settle_lines
from cloud.thumbnails import store_thumbnails
from protocol.messages import EventBatch, GatewayState, ResultBatch, Telemetry, utcnow
from protocol.ota import ReportedState
from protocol.topics import TopicSpace

log = logging.getLogger(__name__)

StreamKey = tuple[str, str]  # (gateway_id, stream)
# Seqs looked at per query while finding the contiguous ack; bounds the work on long backlogs.
ACK_WALK_PAGE = 20_000


@dataclass(slots=True)
class StoreOutcome:
    """What one committed batch did."""

    results_inserted: int = 0
    results_duplicate: int = 0
    events_received: int = 0  # items of event batches, re-sent ones included
    ignored: int = 0
    stale_states: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    streams: set[StreamKey] = field(default_factory=set)
    event_streams: set[StreamKey] = field(default_factory=set)  # those of ``streams`` holding events
    # Per stream, the highest seq below the gateway's oldest held item: acked before, or shed.
    floors: dict[StreamKey, int] = field(default_factory=dict)


def split(inbound: Iterable[Inbound], topics: TopicSpace) -> tuple[list[Decoded], list[Rejected], int]:
    """Classify raw messages into valid ones, rejected ones and a count of ignored ones."""
    valid: list[Decoded] = []
    rejected: list[Rejected] = []
    ignored = 0
    for msg in inbound:
        out = classify(msg, topics)
        if out is None:
            ignored += 1
        elif isinstance(out, Rejected):
            rejected.append(out)
        else:
            valid.append(out)
    return valid, rejected, ignored


def store(session: Session, valid: Sequence[Decoded], rejected: Sequence[Rejected]) -> StoreOutcome:
    """Write a batch into ``session`` (the caller commits): results idempotently on their id."""
    outcome = StoreOutcome(rejected=list(rejected))
    now = utcnow()
    gateway_ids = sorted({d.gateway_id for d in valid})
    _ensure_gateways(session, gateway_ids, now)
    lines = settle_lines(session, valid)
    valid, rejected = lines.valid, [*rejected, *lines.notices]
    result_batches = [(d.message, d.received_at) for d in valid if isinstance(d.message, ResultBatch)]
    if result_batches:
        # Before the gateway rows are locked: the results only need those rows to exist (their
        # foreign key takes a KEY SHARE lock, which the NO KEY UPDATE lock below does not block),
        # so workers sharing a gateway's traffic COPY side by side and queue only for the short
        # gateway updates. Duplicates between them are settled by the results' primary key.
        outcome.results_inserted = insert_results(session, result_batches)
        outcome.results_duplicate = sum(len(b.items) for b, _ in result_batches)
        outcome.results_duplicate -= outcome.results_inserted
        # After the results, which they reference; a re-delivered thumbnail is skipped like its result.
        store_thumbnails(session, (i for b, _ in result_batches for i in b.items))
    gateways = _lock_gateways(session, gateway_ids)
    for gateway_id, line in lines.proposed.items():
        if gateways[gateway_id].line is None:  # another worker may have recorded one meanwhile
            gateways[gateway_id].line = line
    stream_events: list[dict[str, Any]] = []
    for dec in valid:
        gateway = gateways[dec.gateway_id]
        gateway.last_seen = max(gateway.last_seen, dec.received_at)
        msg = dec.message
        if isinstance(msg, ResultBatch):
            key = (msg.gateway_id, msg.stream)
            outcome.streams.add(key)
            if msg.oldest_held_seq is not None:
                outcome.floors[key] = max(outcome.floors.get(key, 0), msg.oldest_held_seq - 1)
        elif isinstance(msg, GatewayState):
            if not apply_state(gateway, msg, dec.received_at):
                outcome.stale_states += 1
        elif isinstance(msg, Telemetry):
            # The cloud's clock orders a gateway's reports: a gateway whose clock runs ahead, or
            # is set back by NTP, still updates its state (its own time stays in the sample).
            if gateway.telemetry_at is None or dec.received_at >= gateway.telemetry_at:
                gateway.telemetry = msg.model_dump(mode="json")
                gateway.telemetry_at = dec.received_at
        elif isinstance(msg, EventBatch):
            key = (msg.gateway_id, msg.stream)
            outcome.streams.add(key)
            outcome.event_streams.add(key)
            if msg.oldest_held_seq is not None:
                outcome.floors[key] = max(outcome.floors.get(key, 0), msg.oldest_held_seq - 1)
            outcome.events_received += len(msg.items)
            stream_events.extend(event_item_rows(msg, dec.received_at))
        elif isinstance(msg, ReportedState):
            _apply_reported(session, msg, dec.received_at)
    session.flush()
    if outcome.streams:
        stream_rows = [
            {"gateway_id": g, "stream": s, "acked_seq": 0, "updated_at": now}
            for g, s in sorted(outcome.streams)
        ]
        session.execute(insert_ignore(session, GatewayStream), stream_rows)
        for (gateway_id, stream), floor in sorted(outcome.floors.items()):
            # Items below the floor are no longer on the gateway: waiting for them would stop the
            # ack for good after the outbox shed some (the shed range arrives as an event).
            session.execute(
                update(GatewayStream)
                .where(
                    GatewayStream.gateway_id == gateway_id,
                    GatewayStream.stream == stream,
                    GatewayStream.acked_seq < floor,
                )
                .values(acked_seq=floor, updated_at=now)
            )
    if stream_events:
        # Re-sent events (a replay, or a batch delivered twice) are skipped on their unique id.
        session.execute(insert_ignore(session, Event), stream_events)
    if rejected:
        session.execute(table_of(DeadLetter).insert(), [_dead_letter_row(r) for r in rejected])
    return outcome


def _ensure_gateways(session: Session, ordered: list[str], now: datetime) -> None:
    """Create a row for each gateway not seen before."""
    if not ordered:
        return
    new_rows = [
        {"id": gid, "online": False, "session": 0, "models": [], "first_seen": now, "last_seen": now}
        for gid in ordered
    ]
    session.execute(insert_ignore(session, Gateway), new_rows)


def _lock_gateways(session: Session, ordered: list[str]) -> dict[str, Gateway]:
    """Load the gateways locked for update, in id order so workers never deadlock on them.

    NO KEY UPDATE (the id never changes here) leaves other workers free to insert results that
    reference these rows meanwhile.
    """
    if not ordered:
        return {}
    query = (
        select(Gateway).where(Gateway.id.in_(ordered)).order_by(Gateway.id).with_for_update(key_share=True)
    )
    return {g.id: g for g in session.scalars(query)}


def apply_state(gateway: Gateway, msg: GatewayState, received_at: datetime) -> bool:
    """Apply a birth/death message; False (and no change) when it is older than what is stored.

    A retained last-will of a previous session can arrive after the new session's birth; the
    session counter orders them, so the newer session is never marked offline by it. Within a
    session the cloud's receive time orders them, not the gateway's clock: a last-will is
    composed when the agent starts, so it carries an earlier time than any birth of its session,
    and a gateway's clock may be minutes off.
    """
    if msg.session < gateway.session:
        log.info(
            "ignoring stale state of gateway %s: session %d < stored %d",
            gateway.id,
            msg.session,
            gateway.session,
        )
        return False
    if msg.session == gateway.session and gateway.last_state_at and received_at < gateway.last_state_at:
        return False
    gateway.online = msg.online
    gateway.session = msg.session
    gateway.agent_version = msg.agent_version
    gateway.last_state_at = received_at
    if msg.online or msg.models:
        gateway.models = [m.model_dump(mode="json") for m in msg.models]
    # Births and deaths alike say what the gateway runs on now (a disk moved to another machine).
    gateway.machine = msg.machine.model_dump(mode="json")
    gateway.cpu_class = msg.machine.cpu_class
    return True


def _apply_reported(session: Session, msg: ReportedState, received_at: datetime) -> None:
    # Retained reports are re-delivered on every (re)subscribe (the broker keeps the latest); two
    # workers may commit out of order: the cloud's receive time says which is newer.
    row = session.get(GatewayReported, msg.gateway_id)
    if row is not None and received_at < row.timestamp:
        return
    if row is None:
        row = GatewayReported(gateway_id=msg.gateway_id)
        session.add(row)
    row.desired_revision = msg.desired_revision
    row.rollout_id = msg.rollout_id
    row.slots = {name: s.model_dump(mode="json") for name, s in msg.slots.items()}
    row.timestamp = received_at
    row.received_at = received_at


def _dead_letter_row(rej: Rejected) -> dict[str, Any]:
    return {
        "received_at": rej.received_at,
        "topic": rej.topic,
        "reason_code": rej.reason_code,
        "reason": rej.reason,
        "payload": rej.payload[:DEAD_LETTER_PAYLOAD_BYTES],
        "payload_size": len(rej.payload),
        "gateway_id": rej.gateway_id,
        "stream": rej.stream,
        "seq": rej.seq,
    }


SeqSource = type[Result] | type[Event]  # the table holding a stream's seqs


def advance_acks(
    session: Session, streams: Iterable[StreamKey], event_streams: Container[StreamKey] = ()
) -> dict[StreamKey, int]:
    """Raise each stream's acked_seq to its highest contiguous committed seq; return the values.

    Reads what is committed in the database rather than what this worker wrote, so it stays
    right when several workers share a gateway's batches. The stored value only ever grows. The
    seqs of ``event_streams`` are in ``events``, the others' in ``results``: the batch that named a
    stream said which it is (stream ids are random per outbox stream, so one is never both).
    """
    acked: dict[StreamKey, int] = {}
    for gateway_id, stream in sorted(streams):
        key_filter = (GatewayStream.gateway_id == gateway_id, GatewayStream.stream == stream)
        current = session.scalar(select(GatewayStream.acked_seq).where(*key_filter)) or 0
        source: SeqSource = Event if (gateway_id, stream) in event_streams else Result
        top = _contiguous_top(session, source, gateway_id, stream, current)
        if top > current:
            session.execute(
                update(GatewayStream)
                .where(*key_filter, GatewayStream.acked_seq < top)
                .values(acked_seq=top, updated_at=utcnow())
            )
            top = session.scalar(select(GatewayStream.acked_seq).where(*key_filter)) or top
        acked[(gateway_id, stream)] = top
    return acked


def _contiguous_top(session: Session, source: SeqSource, gateway_id: str, stream: str, start: int) -> int:
    """The highest seq such that every seq from ``start`` + 1 up to it is stored in ``source``.

    The database finds it: in the run that continues ``start``, ``seq - row_number()`` equals
    ``start`` (the first gap makes it larger). Shipping every seq to Python to walk them cost
    tens of microseconds per row. A window of ``ACK_WALK_PAGE`` seqs bounds the work per query,
    so a gap is found without reading everything stored beyond it.
    """
    top = start
    while True:
        end = top + ACK_WALK_PAGE
        window = (
            select(source.seq.label("seq"))
            .where(
                source.gateway_id == gateway_id,
                source.stream == stream,
                source.seq > top,
                source.seq <= end,
            )
            .distinct()  # two ids with one seq must not look like a gap
            .subquery()
        )
        run = select(
            window.c.seq, (window.c.seq - func.row_number().over(order_by=window.c.seq)).label("shift")
        ).subquery()
        found = session.scalar(select(func.max(run.c.seq)).where(run.c.shift == top))
        if found is None:
            return top
        if found < end:
            return int(found)
        top = end  # the whole window is stored: go on past it


def ingest_messages(
    sessions: sessionmaker[Session], inbound: Sequence[Inbound], topics: TopicSpace
) -> tuple[StoreOutcome, dict[StreamKey, int]]:
    """Decode and commit ``inbound`` in one transaction, then advance the acks of its streams."""
    valid, rejected, ignored = split(inbound, topics)
    with sessions.begin() as session:
        outcome = store(session, valid, rejected)
    outcome.ignored = ignored
    with sessions.begin() as session:
        acks = advance_acks(session, outcome.streams, outcome.event_streams)
    return outcome, acks
