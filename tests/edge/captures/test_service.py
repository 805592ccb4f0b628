"""The capture service: orders documents in (a repeated, older or foreign one changes nothing), and
a confirmed drift starting an automatic capture when the config asks for it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edge_agent.captures import CaptureConfig, CaptureService
from edge_agent.outbox_streams import EventDraft
from protocol.captures import CaptureOrders
from protocol.drift import DRIFT_EVENT_KIND
from protocol.messages import encode, utcnow
from tests.support.captures import order


def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_drift: bool = False) -> CaptureService:
    monkeypatch.setenv("FACTORY_GATEWAY_TOKEN", "fe_test")
    config = CaptureConfig(enabled=True, api_url="http://127.0.0.1:1", on_drift={"enabled": on_drift})
    events: list[EventDraft] = []
    return CaptureService(config, tmp_path, ("gw-1", "line-1", "inspect-1"), {"defect": "defect"},
                          events.append, threading.Event())  # fmt: skip


def orders(revision: int, *capture_ids: str, gateway_id: str = "gw-1") -> bytes:
    document = CaptureOrders(gateway_id=gateway_id, revision=revision, issued_at=utcnow(),
                             orders=tuple(order(c) for c in capture_ids))  # fmt: skip
    return encode(document)


def test_orders_start_each_capture_once_and_ignore_older_foreign_or_broken_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    captures = service(tmp_path, monkeypatch)
    captures.on_orders(orders(2, "cap-00000000000a"))
    captures.on_orders(orders(2, "cap-00000000000a"))  # the broker re-delivers the retained document
    captures.on_orders(orders(1, "cap-00000000000b"))  # older than what was applied
    captures.on_orders(orders(3, "cap-00000000000c", gateway_id="gw-2"))
    captures.on_orders(b'{"schema_version": 1, "gateway_id": "gw-1"}')
    captures.on_orders(b"")  # a cleared retained message
    assert [r.capture_id for r in captures.store.in_phase("recording")] == ["cap-00000000000a"]
    assert "orders for gateway gw-2 on my topic ignored" in caplog.text
    assert "bad capture orders ignored" in caplog.text


def drift_event(transition: str) -> EventDraft:
    return EventDraft(kind=DRIFT_EVENT_KIND, level="warning", message="slot defect: drift " + transition,
                      details={"slot": "defect", "transition": transition})  # fmt: skip


def test_a_confirmed_drift_starts_a_capture_only_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = service(tmp_path / "off", monkeypatch)
    off.on_event(drift_event("confirmed"))
    assert off.store.in_phase("recording") == []

    on = service(tmp_path / "on", monkeypatch, on_drift=True)
    on.on_event(drift_event("suspected"))
    assert on.store.in_phase("recording") == []
    on.on_event(drift_event("confirmed"))
    on.on_event(drift_event("confirmed"))  # one drift capture per slot at a time
    [started] = on.store.in_phase("recording")
    assert (started.origin, started.slot, started.requested_frames) == ("drift", "defect", 60)
    assert started.note == "slot defect: drift confirmed"
    assert started.requested_by == "gateway:gw-1 (drift)"
