"""Alert rules open an alert when their condition holds, close it when it clears, never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import cloud.alerts.rules as rules_module
from cloud.alerts.rules import RuleKind, evaluate_all
from cloud.alerts.schemas import AlertRuleCreate
from cloud.alerts.service import create_rule, delete_rule
from cloud.auth.service import Principal, Role
from cloud.db.models import Alert, AlertRule
from cloud.ingest.service import ingest_messages
from protocol.topics import Channel, TopicSpace
from tests.support.messages import T0, backlog_telemetry, batch, inbound, item, new_stream, note, state

ADMIN = Principal("token:test-admin", Role.admin)


def _rule(sessions: sessionmaker[Session], **fields: object) -> int:
    with sessions.begin() as session:
        return create_rule(session, AlertRuleCreate.model_validate(fields), ADMIN).id


def _alerts(sessions: sessionmaker[Session]) -> list[Alert]:
    with sessions() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def test_defect_rate_rule_opens_once_and_closes_when_the_rate_falls(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    stream = new_stream()
    first = [item(s, at=T0 + timedelta(minutes=s), defect=s % 3 == 0) for s in range(1, 11)]  # 3/10
    other_line = [item(s, line="line-2", at=T0 + timedelta(minutes=s), defect=True) for s in range(11, 15)]
    # Another gateway's line: a gateway's results are stored under the one line it is on.
    ingest_messages(
        sessions,
        [
            inbound(topic_space, "gw-a", Channel.RESULTS, batch("gw-a", stream, first)),
            inbound(topic_space, "gw-b", Channel.RESULTS, batch("gw-b", new_stream(), other_line)),
        ],
        topic_space,
    )
    _rule(sessions, line="line-1", kind="defect_rate", threshold=20, window_s=3600, min_results=5)
    at = T0 + timedelta(minutes=11)

    assert evaluate_all(sessions, at).opened == 1
    again = evaluate_all(sessions, at + timedelta(seconds=30))
    assert (again.opened, again.closed) == (0, 0), "an open alert is never duplicated"
    [alert] = _alerts(sessions)
    assert (alert.line, alert.subject, alert.kind, alert.gateway_id) == (
        "line-1",
        "line-1",
        "defect_rate",
        None,
    )
    assert alert.value == pytest.approx(30.0)
    assert alert.closed_at is None
    assert "30.0% (3/10)" in alert.message

    good = [item(s, at=T0 + timedelta(minutes=s)) for s in range(15, 25)]  # now 3/20 = 15 %
    ingest_messages(
        sessions, [inbound(topic_space, "gw-a", Channel.RESULTS, batch("gw-a", stream, good))], topic_space
    )
    later = T0 + timedelta(minutes=25)
    assert evaluate_all(sessions, later).closed == 1
    [alert] = _alerts(sessions)
    assert alert.closed_at == later

    bad = [item(s, at=T0 + timedelta(minutes=25, seconds=s), defect=True) for s in range(25, 35)]
    ingest_messages(
        sessions, [inbound(topic_space, "gw-a", Channel.RESULTS, batch("gw-a", stream, bad))], topic_space
    )
    assert evaluate_all(sessions, T0 + timedelta(minutes=26)).opened == 1
    assert [a.closed_at is None for a in _alerts(sessions)] == [False, True], (
        "a new alert, the old stays closed"
    )


def test_defect_rate_rule_needs_min_results_in_the_window(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    one = [item(1, at=T0, defect=True)]
    ingest_messages(
        sessions,
        [inbound(topic_space, "gw-a", Channel.RESULTS, batch("gw-a", new_stream(), one))],
        topic_space,
    )
    _rule(sessions, line="line-1", kind="defect_rate", threshold=10, window_s=600, min_results=5)
    assert evaluate_all(sessions, T0 + timedelta(seconds=1)).opened == 0


def test_defect_rate_rule_counts_inspected_parts_not_the_notes_written_on_the_line(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    parts = [item(s, at=T0 + timedelta(seconds=s), defect=s % 2 == 0) for s in range(1, 7)]  # 3/6
    notes = [note(s, "belt squeals", at=T0 + timedelta(seconds=s)) for s in range(7, 27)]
    ingest_messages(
        sessions,
        [inbound(topic_space, "gw-a", Channel.RESULTS, batch("gw-a", new_stream(), parts + notes))],
        topic_space,
    )
    _rule(sessions, line="line-1", kind="defect_rate", threshold=20, window_s=600, min_results=5)
    assert evaluate_all(sessions, T0 + timedelta(minutes=1)).opened == 1
    [alert] = _alerts(sessions)
    assert "50.0% (3/6)" in alert.message  # with the notes it would read 3/26, under the threshold


def test_gateway_offline_rule_opens_per_gateway_and_closes_when_it_is_heard_again(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    ingest_messages(
        sessions,
        [
            inbound(topic_space, "gw-a", Channel.STATE, state("gw-a", True, 1)),
            inbound(topic_space, "gw-b", Channel.STATE, state("gw-b", True, 1)),
            inbound(topic_space, "gw-c", Channel.STATE, state("gw-c", True, 1, line="line-2")),
        ],
        topic_space,
    )
    _rule(sessions, line="line-1", kind="gateway_offline", threshold=60)
    assert evaluate_all(sessions, datetime.now(UTC) + timedelta(seconds=5)).opened == 0

    # gw-a dies; gw-b stays "online" but goes quiet (its link died without a last will).
    ingest_messages(
        sessions, [inbound(topic_space, "gw-a", Channel.STATE, state("gw-a", False, 1))], topic_space
    )
    outcome = evaluate_all(sessions, datetime.now(UTC) + timedelta(seconds=120))
    alerts = {a.subject: a for a in _alerts(sessions)}
    assert set(alerts) == {"gw-a", "gw-b"}, "a rule watches its own line's gateways only"
    assert outcome.opened == 2
    assert alerts["gw-a"].gateway_id == "gw-a"
    assert alerts["gw-a"].value >= 115
    assert "offline" in alerts["gw-a"].message
    assert "silent" in alerts["gw-b"].message

    # gw-a comes back (a new session): its alert closes at the next evaluation.
    ingest_messages(
        sessions, [inbound(topic_space, "gw-a", Channel.STATE, state("gw-a", True, 2))], topic_space
    )
    evaluate_all(sessions, datetime.now(UTC) + timedelta(seconds=1))
    assert all(a.closed_at is not None for a in _alerts(sessions) if a.subject == "gw-a")


def test_outbox_backlog_rule_follows_the_latest_telemetry(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    now = datetime.now(UTC)
    ingest_messages(
        sessions,
        [
            inbound(topic_space, "gw-a", Channel.STATE, state("gw-a", True, 1)),
            inbound(topic_space, "gw-a", Channel.TELEMETRY, backlog_telemetry("gw-a", 500, now)),
        ],
        topic_space,
    )
    _rule(sessions, line="line-1", kind="outbox_backlog", threshold=100)
    assert evaluate_all(sessions).opened == 1
    assert evaluate_all(sessions).opened == 0
    [alert] = _alerts(sessions)
    assert (alert.subject, alert.value, alert.kind) == ("gw-a", 500.0, "outbox_backlog")

    ingest_messages(
        sessions,
        [
            inbound(
                topic_space,
                "gw-a",
                Channel.TELEMETRY,
                backlog_telemetry("gw-a", 3, now + timedelta(seconds=10)),
            )
        ],
        topic_space,
    )
    assert evaluate_all(sessions).closed == 1
    assert _alerts(sessions)[0].closed_at is not None


def test_deleting_a_rule_closes_its_open_alerts_and_keeps_their_history(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    ingest_messages(
        sessions,
        [
            inbound(topic_space, "gw-a", Channel.STATE, state("gw-a", True, 1)),
            inbound(
                topic_space, "gw-a", Channel.TELEMETRY, backlog_telemetry("gw-a", 500, datetime.now(UTC))
            ),
        ],
        topic_space,
    )
    rule_id = _rule(sessions, line="line-1", kind="outbox_backlog", threshold=1)
    evaluate_all(sessions)
    with sessions.begin() as session:
        delete_rule(session, rule_id, ADMIN)
    [alert] = _alerts(sessions)
    assert alert.closed_at is not None
    assert alert.rule_id is None
    assert evaluate_all(sessions).rules == 0


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"kind": "defect_rate", "threshold": 5}, "needs a window"),
        ({"kind": "defect_rate", "threshold": 150, "window_s": 60}, "percent"),
        ({"kind": "gateway_offline", "threshold": 60, "window_s": 60}, "only defect_rate"),
        ({"kind": "cpu_hot", "threshold": 1}, "kind"),
        ({"kind": "outbox_backlog", "threshold": 1, "colour": "red"}, "colour"),
    ],
)
def test_invalid_rules_are_refused_naming_the_field(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        AlertRuleCreate.model_validate({"line": "line-1", **fields})
    assert {k.value for k in RuleKind} == {"defect_rate", "gateway_offline", "outbox_backlog", "model_drift"}


@pytest.mark.allow_logged_exceptions
def test_a_rule_whose_evaluation_raises_leaves_the_other_rules_evaluated(
    sessions: sessionmaker[Session], topic_space: TopicSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault: one rule's evaluation raises (a bug, a row it cannot read). Promise: it is logged and
    # counted, and every other rule still opens its alerts in the same pass.
    ingest_messages(
        sessions, [inbound(topic_space, "gw-a", Channel.STATE, state("gw-a", True, 1))], topic_space
    )
    broken = _rule(sessions, line="line-1", kind="gateway_offline", threshold=60)
    _rule(sessions, line="line-1", kind="gateway_offline", threshold=30)
    real = rules_module.evaluate_rule

    def evaluate_rule(session: Session, rule: AlertRule, at: datetime) -> tuple[int, int]:
        if rule.id == broken:
            raise RuntimeError("rule evaluation fault (test)")
        return real(session, rule, at)

    monkeypatch.setattr(rules_module, "evaluate_rule", evaluate_rule)
    outcome = evaluate_all(sessions, datetime.now(UTC) + timedelta(seconds=120))
    assert (outcome.rules, outcome.failed, outcome.opened) == (2, 1, 1)
    [alert] = _alerts(sessions)
    assert (alert.kind, alert.gateway_id, alert.rule_id) == ("gateway_offline", "gw-a", broken + 1)
