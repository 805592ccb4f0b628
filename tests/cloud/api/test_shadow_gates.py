"""Promotion gated on shadow evidence (cloud/shadow/gates.py, POST /api/v1/rollouts with ``gates``):
a promotion without enough evidence, or with evidence that misses a gate, is refused naming each
gateway's figures and plans nothing; one that passes is planned with the figures in its log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import make_engine, make_sessionmaker
from cloud.db.dataset_models import Dataset, DatasetFile
from cloud.db.models import Rollout
from protocol.ota import ReportedState, SlotReport
from protocol.topics import Channel
from tests.support.console_live import BEFORE, Live
from tests.support.shadow_evidence import T0, send_windows, shadowing

CAPTURE = "cap-0000000000ab1"
PROMOTE = {"model_name": "defect-cnn", "version": "1.1", "target": {"gateways": ["gw-a"]}, "waves": "100%"}


def _promote(live: Live, **gates: Any) -> tuple[int, Any]:
    answer = live.client.post("/api/v1/rollouts", json={**PROMOTE, "gates": gates}, headers=live.token("ada"))
    return answer.status_code, answer.json()


@contextmanager
def _session(live: Live) -> Iterator[Session]:
    engine = make_engine(live.settings.db_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


def _rollouts(live: Live) -> int:
    with _session(live) as session:
        return len(session.scalars(select(Rollout)).all())


def test_a_promotion_without_a_shadow_run_is_refused_and_plans_nothing(live: Live) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    code, body = _promote(live)
    assert code == 422, body
    assert "refused by its shadow gates" in body["detail"]
    assert "gw-a: shadow_run not judged (defect-cnn 1.1 never shadowed slot main here)" in body["detail"]
    assert _rollouts(live) == 0
    assert live.publisher.published == []


def test_too_little_evidence_and_a_flag_rate_jump_are_named_with_their_figures(live: Live) -> None:
    champion, challenger = shadowing(live)
    # The challenger flags 40 of 100 frames the champion passed: it flags far more.
    send_windows(
        live, champion, challenger, 3, {("good", "good"): 55, ("good", "defect"): 40, ("defect", "defect"): 5}
    )
    code, body = _promote(live)
    assert code == 422, body
    detail = body["detail"]
    assert "min_frames 300 (needs >= 500)" in detail
    assert "max_flag_rate_shift 0.4 (needs <= 0.05): champion flags 5.0%, challenger 45.0%" in detail
    assert _rollouts(live) == 0


def test_a_challenger_five_times_slower_is_refused_on_latency(live: Live) -> None:
    champion, challenger = shadowing(live)
    send_windows(live, champion, challenger, 6, {("good", "good"): 95, ("defect", "defect"): 5}, p95=100.0)
    code, body = _promote(live)
    assert code == 422, body
    assert "max_p95_ratio 5 (needs <= 2)" in body["detail"]  # champion p95 20 ms in every window
    assert "min_frames" not in body["detail"]


def test_a_promotion_that_passes_is_planned_with_the_figures_in_its_log(live: Live) -> None:
    champion, challenger = shadowing(live)
    send_windows(
        live, champion, challenger, 6, {("good", "good"): 93, ("defect", "defect"): 5, ("good", "defect"): 2}
    )
    code, body = _promote(live, min_frames=500, max_flag_rate_shift=0.05)
    assert code == 201, body
    [gated] = [e for e in body["events"] if e["kind"] == "shadow_gates"]
    assert gated["message"] == "shadow gates passed on 1 gateway(s), 600 frames compared"
    figures = {g["gate"]: g for g in gated["details"]["gateways"]["gw-a"]}
    assert figures["min_frames"]["measured"] == 600
    assert abs(figures["max_flag_rate_shift"]["measured"] - 0.02) < 1e-9
    assert figures["max_p95_ratio"]["measured"] == 1.5
    live.tick()
    promoted = live.publisher.published[-1]
    assert promoted.slots["main"].manifest.version == "1.1"

    # The gateway swaps it in: the evidence that promoted it stays on show, beside the model it replaced.
    serving = SlotReport(active=challenger, previous=champion, phase="committed", health=BEFORE)
    live.ingest("gw-a", Channel.REPORTED, ReportedState(
        gateway_id="gw-a", desired_revision=promoted.revision, slots={"main": serving}, timestamp=datetime.now(UTC)))  # fmt: skip
    [row] = live.client.get("/api/v1/shadow", headers=live.token("vera")).json()
    assert (row["phase"], row["champion"]["version"], row["challenger"]["version"]) == (
        "promoted",
        "1.0",
        "1.1",
    )
    assert (row["compared"], row["windows"]) == (600, 6)


def test_labelled_disagreements_say_who_was_right(live: Live) -> None:
    champion, challenger = shadowing(live)
    cells = {("good", "good"): 90, ("defect", "good"): 8, ("defect", "defect"): 2}  # it flags fewer
    send_windows(live, champion, challenger, 6, cells, capture=CAPTURE)
    # The champion flagged all 12 disagreements; an operator says 9 were good parts (the
    # challenger was right to pass them), 2 were real defects, and skips one.
    _captured(live, CAPTURE, ["good"] * 9 + ["scratch"] * 2 + ["skip"])
    code, body = _promote(live, max_flag_rate_shift=0.1, min_labelled_accuracy=0.9, min_labelled=10)
    assert code == 422, body
    assert "min_labelled_accuracy 0.8182 (needs >= 0.9): challenger right on 9 of 11" in body["detail"]
    code, body = _promote(live, max_flag_rate_shift=0.1, min_labelled_accuracy=0.8, min_labelled=20)
    assert code == 422, body
    assert "(11 disagreement(s) labelled, 20 needed)" in body["detail"]
    code, body = _promote(live, max_flag_rate_shift=0.1, min_labelled_accuracy=0.8, min_labelled=10)
    assert code == 201, body


def test_too_few_labels_fail_the_accuracy_gate_rather_than_pass_it(live: Live) -> None:
    champion, challenger = shadowing(live)
    send_windows(
        live, champion, challenger, 6, {("good", "good"): 95, ("defect", "good"): 5}, capture=CAPTURE
    )
    _captured(live, CAPTURE, ["good"] * 3)
    code, body = _promote(live, max_flag_rate_shift=0.1, min_labelled_accuracy=0.5)
    assert code == 422, body
    assert "min_labelled_accuracy not judged (3 disagreement(s) labelled, 10 needed)" in body["detail"]


def _captured(live: Live, capture_id: str, labels: list[str]) -> None:
    """The disagreement capture as the cloud registers it: frames the champion flagged, labelled."""
    with _session(live) as session:
        session.add(Dataset(
            id=capture_id, gateway_id="gw-a", line="line-1", station=None, slot="main", origin="shadow",
            label=None, note=None, requested_by="gateway:gw-a (shadow)", requested_at=T0,
            requested_frames=len(labels), max_bytes=10**6, status="complete", reason=None, started_at=T0,
            ended_at=T0, frames=len(labels), total_bytes=0, model=None, registered_at=T0, fingerprint=None,
        ))  # fmt: skip
        session.flush()
        for n, label in enumerate(labels):
            session.add(DatasetFile(
                dataset_id=capture_id, name=f"{n:05d}.png", sha256=f"{n:064x}", size_bytes=1, captured_at=T0,
                source="cam1", frame=f"f{n}", model_label="scratch", score=0.9, label=label,
                labelled_by="olga", labelled_at=T0,
            ))  # fmt: skip
