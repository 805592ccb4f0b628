"""Hypothesis strategies that build valid wire messages."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from protocol.machine import CPU_CLASSES, INFERENCE_FEATURES
from protocol.messages import (
    Ack,
    Box,
    ClassificationOutput,
    DefectOutput,
    EventBatch,
    EventItem,
    GatewayState,
    LoadedModel,
    MachineInfo,
    ModelRef,
    ResultBatch,
    ResultItem,
    Telemetry,
)

# Any text but U+0000, which the wire refuses (PostgreSQL cannot store it).
wire_chars = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}\Z")
gateway_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z")
versions = st.tuples(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999)).map(
    lambda t: ".".join(map(str, t))
)
sha = st.binary(min_size=32, max_size=32).map(bytes.hex)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds with timezones=
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
streams = st.uuids(version=4).map(lambda u: u.hex)
unit = st.floats(0.0, 1.0, allow_nan=False)
counts = st.integers(0, 2**40)

model_refs = st.builds(ModelRef, name=names, version=versions, sha256=sha)
loaded = st.builds(LoadedModel, name=names, version=versions, sha256=sha, slot=names, task=names)
machines = st.builds(
    MachineInfo,
    arch=st.none() | st.sampled_from(["x86_64", "aarch64", "AMD64", "riscv64"]),
    cpu_model=st.none() | st.text(wire_chars, min_size=1, max_size=128),
    cpu_class=st.none() | st.sampled_from(CPU_CLASSES),
    features=st.lists(st.sampled_from(INFERENCE_FEATURES), unique=True).map(tuple),
    cores=st.none() | st.integers(1, 1024),
    memory_bytes=st.none() | counts,
)
states = st.builds(
    GatewayState,
    gateway_id=gateway_ids,
    online=st.booleans(),
    session=st.integers(0, 2**31),
    agent_version=st.text(wire_chars, max_size=20),
    line=st.none() | names,
    models=st.lists(loaded, max_size=3).map(tuple),
    timestamp=aware,
    machine=machines,
)
boxes = st.builds(
    Box, x=st.integers(0, 4000), y=st.integers(0, 4000), w=st.integers(0, 4000), h=st.integers(0, 4000)
)
outputs = st.one_of(
    st.builds(
        DefectOutput,
        label=names,
        is_defect=st.booleans(),
        score=unit,
        scores=st.dictionaries(names, unit, max_size=4),
        box=st.none() | boxes,
    ),
    st.builds(ClassificationOutput, label=names, score=unit, scores=st.dictionaries(names, unit, max_size=4)),
)


def _item(seq: int) -> st.SearchStrategy[ResultItem]:
    return st.builds(
        ResultItem,
        id=st.uuids(),
        seq=st.just(seq),
        captured_at=aware,
        inferred_at=aware,
        line=names,
        station=names,
        source=names,
        frame=st.text(wire_chars, min_size=1, max_size=40),
        model=model_refs,
        output=outputs,
        latency_ms=st.floats(0, 1e6, allow_nan=False),
        replayed=st.booleans(),
    )


batches = st.builds(
    lambda gw, stream, sent, items: ResultBatch(
        gateway_id=gw, stream=stream, sent_at=sent, items=tuple(items)
    ),
    gateway_ids,
    streams,
    aware,
    st.integers(1, 5).flatmap(lambda n: st.tuples(*[_item(i + 1) for i in range(n)])),
)
acks = st.builds(
    Ack, gateway_id=gateway_ids, stream=streams, acked_seq=st.integers(0, 2**53), committed_at=aware
)
telemetry = st.builds(
    Telemetry,
    gateway_id=gateway_ids,
    timestamp=aware,
    uptime_s=st.floats(0, 1e9, allow_nan=False),
    cpu_percent=st.floats(0, 800, allow_nan=False),
    memory_bytes=counts,
    frames_in=counts,
    inferences=counts,
    frames_dropped=counts,
    publish_errors=counts,
    outbox_depth=counts,
    outbox_bytes=counts,
)
event_details = st.dictionaries(
    st.text(wire_chars, max_size=10),
    st.none() | st.booleans() | st.integers() | st.text(wire_chars, max_size=10),
)


def _event_item(seq: int) -> st.SearchStrategy[EventItem]:
    return st.builds(
        EventItem,
        id=st.uuids(),
        seq=st.just(seq),
        timestamp=aware,
        level=st.sampled_from(["info", "warning", "error"]),
        kind=names,
        message=st.text(wire_chars, max_size=100),
        details=event_details,
        replayed=st.booleans(),
    )


event_batches = st.builds(
    lambda gw, stream, sent, items, floor: EventBatch(
        gateway_id=gw, stream=stream, sent_at=sent, items=tuple(items), oldest_held_seq=floor
    ),
    gateway_ids,
    streams,
    aware,
    st.integers(1, 4).flatmap(lambda n: st.tuples(*[_event_item(i + 1) for i in range(n)])),
    st.none() | st.just(1),  # items start at seq 1, so the floor may not be above it
)
all_messages = st.one_of(states, batches, acks, telemetry, event_batches)
