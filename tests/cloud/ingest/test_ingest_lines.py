"""A gateway's line is the cloud's record: its first birth proposes it, an admin moves it, and a
birth or results claiming another line are stored under the recorded one with a notice."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import DeadLetter, Gateway, Result
from cloud.ingest.lines import LINE_CLAIM
from cloud.ingest.service import ingest_messages
from protocol.messages import utcnow
from protocol.topics import Channel, TopicSpace
from tests.support.messages import batch, inbound, item, new_stream, state
from tests.support.production import production_api


def _line_of(sessions: sessionmaker[Session], gateway_id: str) -> str | None:
    with sessions() as session:
        gateway = session.get(Gateway, gateway_id)
        assert gateway is not None
        return gateway.line


def _result_lines(sessions: sessionmaker[Session], gateway_id: str) -> dict[int, str]:
    with sessions() as session:
        rows = session.execute(sa.select(Result.seq, Result.line).where(Result.gateway_id == gateway_id))
        return {int(seq): str(line) for seq, line in rows}


def _notices(sessions: sessionmaker[Session]) -> list[DeadLetter]:
    with sessions() as session:
        return list(session.scalars(sa.select(DeadLetter).where(DeadLetter.reason_code == LINE_CLAIM)))


def test_results_and_births_claiming_another_line_stay_on_the_recorded_one(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    """The fault (or attack): gw-1, recorded on line-1, starts claiming line-2 in its birth and
    its results. The promise kept: every result is stored, under line-1; line-2's results stay
    untouched; gw-1 stays on line-1; a notice says what was claimed."""
    t = utcnow()
    ingest_messages(
        sessions, [inbound(topic_space, "gw-1", Channel.STATE, state("gw-1", True, 1, t))], topic_space
    )
    assert _line_of(sessions, "gw-1") == "line-1", "the first birth proposes the line"
    stream = new_stream()
    claims = [
        inbound(
            topic_space,
            "gw-1",
            Channel.STATE,
            state("gw-1", True, 2, t + timedelta(seconds=1), line="line-2"),
        ),
        inbound(
            topic_space,
            "gw-1",
            Channel.RESULTS,
            batch("gw-1", stream, [item(1, line="line-1"), item(2, line="line-2"), item(3, line="line-2")]),
        ),
    ]
    ingest_messages(sessions, claims, topic_space)
    assert _line_of(sessions, "gw-1") == "line-1"
    assert _result_lines(sessions, "gw-1") == {1: "line-1", 2: "line-1", 3: "line-1"}
    notices = _notices(sessions)
    assert len(notices) == 2, [n.reason for n in notices]
    reasons = sorted(n.reason for n in notices)
    assert "its birth claimed 'line-2'" in reasons[0], reasons
    assert "its results claimed 'line-2': 2 stored under 'line-1'" in reasons[1], reasons
    assert {(n.gateway_id, n.topic) for n in notices} == {
        ("gw-1", topic_space.topic("gw-1", Channel.STATE)),
        ("gw-1", topic_space.topic("gw-1", Channel.RESULTS)),
    }


def test_a_new_gateway_results_first_propose_its_line(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    results = batch("gw-9", new_stream(), [item(1, line="line-3"), item(2, line="line-4")])
    ingest_messages(sessions, [inbound(topic_space, "gw-9", Channel.RESULTS, results)], topic_space)
    assert _line_of(sessions, "gw-9") == "line-3"
    assert _result_lines(sessions, "gw-9") == {1: "line-3", 2: "line-3"}
    [notice] = _notices(sessions)
    assert notice.seq == 1


def test_an_admin_moves_a_gateway_and_its_results_follow(
    sessions: sessionmaker[Session], topic_space: TopicSpace, db_url: str, tmp_path: object
) -> None:
    t = utcnow()
    ingest_messages(
        sessions, [inbound(topic_space, "gw-1", Channel.STATE, state("gw-1", True, 1, t))], topic_space
    )
    with production_api(db_url, tmp_path) as (client, tokens):  # type: ignore[arg-type]
        operator = client.patch(
            "/api/v1/gateways/gw-1",
            json={"line": "line-7"},
            headers={"Authorization": f"Bearer {tokens['operator']}"},
        )
        assert operator.status_code == 403, operator.text
        moved = client.patch(
            "/api/v1/gateways/gw-1",
            json={"line": "line-7"},
            headers={"Authorization": f"Bearer {tokens['admin']}"},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["line"] == "line-7"
        bad = client.patch(
            "/api/v1/gateways/gw-1",
            json={"line": "no spaces"},
            headers={"Authorization": f"Bearer {tokens['admin']}"},
        )
        assert bad.status_code == 422, bad.text
    stream = new_stream()
    ingest_messages(
        sessions,
        [inbound(topic_space, "gw-1", Channel.RESULTS, batch("gw-1", stream, [item(1)]))],
        topic_space,
    )
    assert _result_lines(sessions, "gw-1") == {1: "line-7"}
    assert _line_of(sessions, "gw-1") == "line-7"
