"""Fuzzing ingest through the real broker: random and broken payloads on every channel a gateway
may publish, a valid message of one channel on another, and topics outside the contract.

The worker keeps running (a valid batch sent afterwards is stored and acked) and parks each
refused message in ``dead_letters``: as many rows as messages refused, none lost.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from cloud.db.engine import make_engine
from cloud.db.models import DeadLetter
from cloud.ingest.decode import CHANNEL_MODELS, Inbound, Rejected, classify
from cloud.ingest.worker import IngestWorker
from protocol.messages import MAX_PAYLOAD_BYTES, WireModel, encode
from protocol.ota import ModelRef, ReportedState, SlotHealth, SlotReport
from protocol.topics import Channel, TopicSpace
from tests.support.messages import SHA, batch, gateway_event, item, new_stream, note, state, telemetry
from tests.support.mqtt import Publisher
from tests.support.mutations import mutants
from tests.support.waiting import wait_for

SEED = 20260714
MUTANTS_PER_CHANNEL = 200  # 25 rounds of the eight mutations
GATEWAY = "gw-fuzz"


def _valid_messages() -> dict[Channel, WireModel]:
    """One valid message per channel a gateway publishes on."""
    at = datetime.now(UTC)
    running = SlotReport(
        active=ModelRef(name="defect-cnn", version="1.0", sha256=SHA),
        phase="rolled_back",
        error="smoke test failed",
        health=SlotHealth(inferences=10, errors=1),
    )
    return {
        Channel.RESULTS: batch(GATEWAY, new_stream(), [item(1, at=at), note(2, "belt squeaks", at=at)]),
        Channel.STATE: state(GATEWAY, True, 1, at=at),
        Channel.TELEMETRY: telemetry(GATEWAY),
        Channel.EVENTS: gateway_event(GATEWAY, at, "error", "ota", "smoke test failed", {"slot": "main"}),
        Channel.REPORTED: ReportedState(
            gateway_id=GATEWAY, desired_revision=1, slots={"main": running}, timestamp=at
        ),
    }


def _dead_letters(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(DeadLetter)) or 0)
    finally:
        engine.dispose()


def _refused(topics: TopicSpace, topic: str, payload: bytes) -> bool:
    # ingest's own verdict on one message (decode.py, tested on its own); what is under test here
    # is that each refused message reaches dead_letters through the broker and the worker.
    verdict = classify(Inbound(topic, payload, datetime.now(UTC)), topics)
    return isinstance(verdict, Rejected)


def test_ingest_survives_broken_payloads_on_every_channel_and_dead_letters_each(
    start_worker: Callable[..., IngestWorker], publisher: Publisher
) -> None:
    worker = start_worker()
    topic_space, db_url = worker.topics, worker.settings.db_url
    rng = random.Random(SEED)
    sent: list[tuple[str, bytes]] = []
    valid = {channel: encode(message) for channel, message in _valid_messages().items()}
    assert set(valid) == set(CHANNEL_MODELS)  # every channel ingest reads from gateways
    for channel, payload in valid.items():
        topic = topic_space.topic(GATEWAY, channel)
        sent += [(topic, broken) for broken in mutants(rng, payload, MUTANTS_PER_CHANNEL)]
        others = [p for c, p in valid.items() if c is not channel]
        sent += [(topic, other) for other in others]  # another channel's message
        sent.append((topic, b"{" + b" " * MAX_PAYLOAD_BYTES + b"}"))  # over the size cap
    root = topic_space.root
    sent += [
        (f"{root}/{GATEWAY}/bogus", valid[Channel.TELEMETRY]),  # no such channel
        (f"{root}/gw with spaces/{Channel.RESULTS.value}", valid[Channel.RESULTS]),  # not a gateway id
        (f"{root}/{'g' * 65}/{Channel.STATE.value}", valid[Channel.STATE]),  # gateway id too long
        (topic_space.topic("gw-other", Channel.STATE), valid[Channel.STATE]),  # payload names another
    ]

    for topic, payload in sent:
        publisher.publish_raw(topic, payload)
    refused = sum(_refused(topic_space, topic, payload) for topic, payload in sent)

    # Still running: a valid batch sent after all that is stored and acknowledged.
    stream = new_stream()
    publisher.publish(GATEWAY, Channel.RESULTS, batch(GATEWAY, stream, [item(1), item(2)]))
    wait_for(
        lambda: publisher.ack_of(GATEWAY, stream) == 2, timeout_s=60, what="the batch after the fuzz acked"
    )
    wait_for(
        lambda: _dead_letters(db_url) >= refused,
        timeout_s=60,
        what=f"{refused} dead letters",
    )
    # The mutations break what they touch, nearly always; the few that stay valid are stored.
    assert refused > 0.9 * len(sent), f"only {refused} of {len(sent)} messages were refused"
    assert _dead_letters(db_url) == refused
    assert worker.metrics.commit_failures._value.get() == 0
