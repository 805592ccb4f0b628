"""Shadow runs through the API (cloud/api/routers/shadow.py, cloud/shadow/): admins name a challenger
beside a slot's model, which the desired state carries until stopped, through rollouts of other
versions and the promotion of its own; refusals name the reason; the status sums the gateway's
comparison records of that champion and challenger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from protocol.messages import ModelRef
from protocol.ota import ChallengerReport, ReportedState, SlotReport
from protocol.topics import Channel
from tests.support.console_live import BEFORE, Live
from tests.support.messages import SHA
from tests.support.shadow_evidence import T0, comparison, send, start_shadow


def _status(live: Live) -> list[dict[str, object]]:
    answer = live.client.get("/api/v1/shadow", headers=live.token("vera"))
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, object]] = answer.json()
    return rows


def test_admins_start_a_challenger_the_desired_state_carries_and_viewers_cannot(live: Live) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    assert start_shadow(live, "vera")[0] == 403
    assert start_shadow(live, "otto")[0] == 403
    code, change = start_shadow(live)
    assert code == 200, change
    assert (change["slot"], change["gateways"], change["published"]) == ("main", ["gw-a"], True)
    state = live.publisher.published[-1]
    assert state.gateway_id == "gw-a"
    assert state.challengers["main"].manifest.version == "1.1"
    assert "main" not in state.slots or state.slots["main"].manifest.version != "1.1"  # nothing installed


def test_a_start_that_could_never_be_promoted_is_refused_naming_why(live: Live) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    code, body = start_shadow(live, version="9.9")
    assert (code, "defect-cnn version 9.9 is not in the registry" in str(body["detail"])) == (404, True)
    code, body = start_shadow(live, target={"gateways": ["gw-zz"]})
    assert code == 422
    assert "gw-zz" in str(body["detail"])
    code, body = start_shadow(live, slot="parcels")
    assert code == 422
    assert "parcels" in str(body["detail"])
    live.report("gw-a", "1.1", 0, BEFORE, "committed")  # it serves 1.1 already
    code, body = start_shadow(live)
    assert code == 422
    assert "already run" in str(body["detail"])
    assert live.publisher.published == []


def test_status_sums_the_comparisons_of_this_champion_and_challenger(live: Live) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    assert start_shadow(live)[0] == 200
    [idle] = _status(live)
    assert (idle["gateway_id"], idle["slot"], idle["windows"], idle["compared"]) == ("gw-a", "main", 0, 0)
    assert idle["agreement"] is None

    desired = live.publisher.published[-1]
    challenger_sha = desired.challengers["main"].manifest.sha256
    champion = ModelRef(name="defect-cnn", version="1.0", sha256=SHA)
    challenger = ModelRef(name="defect-cnn", version="1.1", sha256=challenger_sha)
    said = ChallengerReport(model=challenger, phase="shadowing", compared=100, skipped=4)
    report = SlotReport(active=champion, phase="committed", health=BEFORE, challenger=said)
    live.ingest("gw-a", Channel.REPORTED, ReportedState(
        gateway_id="gw-a", desired_revision=desired.revision, slots={"main": report}, timestamp=datetime.now(UTC)))  # fmt: skip
    first = {("good", "good"): 35, ("defect", "defect"): 5, ("good", "defect"): 10}
    second = {("good", "good"): 45, ("defect", "good"): 5}
    send(live, comparison(champion, challenger, T0, first, p95=35.0, capture="cap-00000000000d1"))
    send(live, comparison(champion, challenger, T0 + timedelta(minutes=1), second, p95=55.0))
    other_champion = ModelRef(name="defect-cnn", version="0.9", sha256="cd" * 32)
    send(
        live,
        comparison(other_champion, challenger, T0 - timedelta(hours=1), {("good", "defect"): 50}, p95=900.0),
    )

    [row] = _status(live)
    assert row["phase"] == "shadowing"
    assert (row["windows"], row["compared"], row["skipped"]) == (2, 100, 4)  # the 0.9 champion's left out
    assert row["agreement"] == pytest.approx(0.85)  # 15 of 100 frames differ
    assert row["champion_flag_rate"] == pytest.approx(0.10)
    assert row["challenger_flag_rate"] == pytest.approx(0.15)
    assert (row["champion_p95_ms"], row["challenger_p95_ms"]) == (20.0, 55.0)
    assert row["disagreement_captures"] == ["cap-00000000000d1"]
    line = live.client.get("/api/v1/shadow?line=no-such-line", headers=live.token("vera")).json()
    assert line == []


def test_rollouts_keep_the_challenger_and_a_stop_drops_it(live: Live) -> None:
    live.report("gw-a", "1.0", 0, BEFORE, "committed")
    assert start_shadow(live)[0] == 200
    live.create()  # promotion: a rollout of the challenger's own version
    live.tick()
    promoted = live.publisher.published[-1]
    assert promoted.slots["main"].manifest.version == "1.1"
    assert promoted.challengers["main"].manifest.version == "1.1"  # the gateway drops it once it serves

    stop = {"slot": "main", "target": {"line": "line-1"}}
    assert live.client.post("/api/v1/shadow/stop", json=stop, headers=live.token("otto")).status_code == 403
    answer = live.client.post("/api/v1/shadow/stop", json=stop, headers=live.token("ada"))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["gateways"], answer.json()["challenger"]) == (["gw-a"], None)
    stopped = live.publisher.published[-1]
    assert stopped.challengers == {}
    assert stopped.slots["main"].manifest.version == "1.1"  # the slot is left as it was
    assert stopped.revision == promoted.revision + 1
    again = live.client.post("/api/v1/shadow/stop", json=stop, headers=live.token("ada"))
    assert again.status_code == 404
    assert "no targeted gateway has a challenger in slot main" in again.json()["detail"]
    assert _status(live) == []
