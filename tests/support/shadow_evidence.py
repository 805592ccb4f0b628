"""Shadow runs for the cloud's tests: a challenger started through the API, reported by gw-a, and
comparison records arriving as gw-a's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from protocol.messages import ModelRef
from protocol.ota import ChallengerReport, ReportedState, SlotReport
from protocol.shadow import SCORE_BINS, SHADOW_EVENT_KIND, AgreementCell, ShadowComparison
from protocol.topics import Channel
from tests.support.console_live import BEFORE, Live
from tests.support.messages import SHA, gateway_event

START = {"model_name": "defect-cnn", "version": "1.1", "target": {"gateways": ["gw-a"]}}
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def start_shadow(live: Live, who: str = "ada", **body: object) -> tuple[int, dict[str, object]]:
    answer = live.client.post("/api/v1/shadow", json={**START, **body}, headers=live.token(who))
    return answer.status_code, answer.json()


def bins(frames: int) -> tuple[int, ...]:
    return (frames,) + (0,) * (SCORE_BINS - 1)


def comparison(champion: ModelRef, challenger: ModelRef, start: datetime, cells: dict[tuple[str, str], int],
            p95: float, capture: str | None = None) -> ShadowComparison:  # fmt: skip
    compared = sum(cells.values())
    return ShadowComparison(
        slot="main", champion=champion, challenger=challenger, started_at=start,
        ended_at=start + timedelta(minutes=1), compared=compared, skipped=2,
        matrix=tuple(AgreementCell(champion=a, challenger=b, frames=n) for (a, b), n in cells.items()),
        champion_scores=bins(compared), challenger_scores=bins(compared),
        champion_p50_ms=10.0, champion_p95_ms=20.0, challenger_p50_ms=30.0, challenger_p95_ms=p95,
        capture_id=capture, captured=1 if capture else 0,
    )  # fmt: skip


def send(live: Live, record: ShadowComparison) -> None:
    event = gateway_event("gw-a", record.ended_at, "info", SHADOW_EVENT_KIND, "window", record.details())
    live.ingest("gw-a", Channel.EVENTS, event)


def shadowing(live: Live) -> tuple[ModelRef, ModelRef]:
    """gw-a serves 1.0 and shadows 1.1 (asked for and reported)."""
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    assert start_shadow(live)[0] == 200
    desired = live.publisher.published[-1]
    champion = ModelRef(name="defect-cnn", version="1.0", sha256=SHA)
    challenger = ModelRef(
        name="defect-cnn", version="1.1", sha256=desired.challengers["main"].manifest.sha256
    )
    said = ChallengerReport(model=challenger, phase="shadowing", compared=0, skipped=0)
    report = SlotReport(active=champion, phase="committed", health=BEFORE, challenger=said)
    live.ingest("gw-a", Channel.REPORTED, ReportedState(
        gateway_id="gw-a", desired_revision=desired.revision, slots={"main": report}, timestamp=datetime.now(UTC)))  # fmt: skip
    return champion, challenger


def send_windows(live: Live, champion: ModelRef, challenger: ModelRef, count: int,
             cells: dict[tuple[str, str], int], p95: float = 30.0, capture: str | None = None) -> None:  # fmt: skip
    for n in range(count):
        send(
            live, comparison(champion, challenger, T0 + timedelta(minutes=n), cells, p95=p95, capture=capture)
        )
