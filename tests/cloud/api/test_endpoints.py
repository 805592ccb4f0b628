"""The HTTP API over a database seeded through the ingest service functions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.ingest.service import ingest_messages
from protocol.messages import ParcelOutput, ResultItem
from protocol.topics import Channel, TopicSpace
from tests.support.database import seed
from tests.support.messages import T0, batch, inbound, item, new_stream, state
from tests.support.testclient import TestClient


@pytest.fixture
def client(db_url: str, topic_space: TopicSpace) -> Iterator[TestClient]:
    seed(db_url, topic_space)
    app = create_app(CloudSettings(db_url=db_url, topic_root=topic_space.root))
    with TestClient(app) as test_client:
        yield test_client


def get(client: TestClient, path: str, status: int = 200, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    return response.json()


def test_gateways_list_and_detail(client: TestClient) -> None:
    gateways = get(client, "/api/v1/gateways")
    assert [(g["id"], g["online"], g["line"]) for g in gateways] == [
        ("gw-a", True, "line-1"),
        ("gw-b", False, "line-2"),
    ]
    gw = get(client, "/api/v1/gateways/gw-a")
    assert gw["agent_version"] == "0.1.0"
    assert gw["models"][0]["name"] == "defect-cnn"
    assert gw["telemetry"]["inferences"] == 10
    assert gw["last_seen"].endswith(("Z", "+00:00"))
    assert "not found" in get(client, "/api/v1/gateways/nope", 404)["detail"]


def test_results_filters(client: TestClient) -> None:
    def ids(**params: Any) -> list[int]:
        return [r["seq"] for r in get(client, "/api/v1/results", **params)["items"]]

    assert ids(line="line-1") == list(range(10, 0, -1))  # newest first
    assert ids(gateway="gw-b") == [5, 4, 3, 2, 1]
    assert ids(model="parcel-cls", limit=2) == [5, 4]
    assert ids(line="line-1", is_defect="true") == [9, 6, 3]
    assert ids(label="scratch") == [9, 6, 3]
    since, until = (T0 + timedelta(minutes=4)).isoformat(), (T0 + timedelta(minutes=7)).isoformat()
    assert ids(line="line-1", since=since, until=until) == [6, 5, 4]
    first = get(client, "/api/v1/results", line="line-1", limit=1)["items"][0]
    assert first["captured_at"] == "2026-01-05T08:10:00Z"
    assert first["model_sha256"] == "ab" * 32


def test_results_pagination_by_offset_and_cursor(client: TestClient) -> None:
    page = get(client, "/api/v1/results", limit=4)
    assert (len(page["items"]), page["next_offset"]) == (4, 4)
    seen = [r["id"] for r in page["items"]]
    while page["next_cursor"]:
        page = get(client, "/api/v1/results", limit=4, cursor=page["next_cursor"])
        seen += [r["id"] for r in page["items"]]
    assert len(seen) == len(set(seen)) == 15
    by_offset = get(client, "/api/v1/results", limit=1000)
    assert [r["id"] for r in by_offset["items"]] == seen
    assert by_offset["next_offset"] is None
    assert by_offset["next_cursor"] is None


def test_results_bad_params_are_422_with_reason(client: TestClient) -> None:
    assert get(client, "/api/v1/results", 422, limit=1001)["detail"][0]["loc"] == ["query", "limit"]
    naive = get(client, "/api/v1/results", 422, since="2026-01-05T08:00:00")
    assert "timezone" in naive["detail"][0]["msg"]
    assert "cursor" in get(client, "/api/v1/results", 422, cursor="!!!")["detail"]
    assert (
        "before" in get(client, "/api/v1/results", 422, since=T0.isoformat(), until=T0.isoformat())["detail"]
    )
    assert get(client, "/api/v1/results", 422, is_defect="maybe")["detail"][0]["loc"] == [
        "query",
        "is_defect",
    ]


def test_line_stats_buckets(client: TestClient) -> None:
    stats = get(
        client,
        "/api/v1/lines/line-1/stats",
        since=T0.isoformat(),
        until=(T0 + timedelta(minutes=15)).isoformat(),
        interval_s=300,
    )
    buckets = [(b["results"], b["inspected"], b["defects"]) for b in stats["buckets"]]
    # Minutes 1-4 | 5-9 | 10 (a result exactly on a boundary opens the next bucket).
    assert buckets == [(4, 4, 1), (5, 5, 2), (1, 1, 0)]
    assert stats["buckets"][1]["defect_rate"] == pytest.approx(0.4)
    assert (stats["results"], stats["defects"]) == (10, 3)
    assert stats["buckets"][0]["start"] == "2026-01-05T08:00:00Z"
    assert stats["defects_by_label"] == {"scratch": 3}
    assert (stats["parcels"], stats["damaged_rate"], stats["parcels_by_lane"]) == (0, None, {})
    # Counted over the range only: the window of minutes 5-9 holds two of the three.
    window = get(client, "/api/v1/lines/line-1/stats", since=(T0 + timedelta(minutes=5)).isoformat(),
                 until=(T0 + timedelta(minutes=10)).isoformat(), interval_s=300)  # fmt: skip
    assert window["defects_by_label"] == {"scratch": 2}
    # A classification line has results but nothing inspected for defects.
    other = get(
        client,
        "/api/v1/lines/line-2/stats",
        since=T0.isoformat(),
        until=(T0 + timedelta(hours=1)).isoformat(),
    )
    assert (other["results"], other["inspected"], other["defect_rate"]) == (5, 0, None)
    assert other["defects_by_label"] == {}


def test_line_stats_errors(client: TestClient) -> None:
    assert "not found" in get(client, "/api/v1/lines/line-9/stats", 404)["detail"]
    too_many = get(client, "/api/v1/lines/line-1/stats", 422, since=T0.isoformat(), interval_s=1)
    assert "buckets" in too_many["detail"]
    assert get(client, "/api/v1/lines/line-1/stats", 422, interval_s=0)["detail"][0]["loc"] == [
        "query",
        "interval_s",
    ]


def test_lines_dead_letters_health_metrics_docs(client: TestClient) -> None:
    lines = get(client, "/api/v1/lines")
    assert [(x["line"], x["gateways"], x["results"]) for x in lines] == [("line-1", 1, 10), ("line-2", 1, 5)]
    assert lines[0]["last_result_at"] == "2026-01-05T08:10:00Z"
    dead = get(client, "/api/v1/dead-letters")
    assert [(d["reason_code"], d["gateway_id"], d["payload_preview"]) for d in dead["items"]] == [
        ("bad_json", "gw-b", "garbage")
    ]
    assert get(client, "/api/v1/dead-letters", reason="oversize")["items"] == []
    assert get(client, "/healthz") == {"status": "ok", "database": "ok"}
    metrics = client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in metrics
    assert client.get("/docs").status_code == 200
    assert "/api/v1/lines/{line}/stats" in get(client, "/openapi.json")["paths"]


def parcel(seq: int, at: datetime, lane: str, damaged: bool, line: str = "line-3") -> ResultItem:
    """A parcel result: its label is the sort lane, and it carries no is_defect."""
    output = ParcelOutput(label=lane, score=0.99, track_id=seq, damaged=damaged)
    return item(seq, line=line, at=at, model="parcel-det").model_copy(update={"output": output})


@pytest.mark.parametrize("database", ["pg_url", "sqlite_url"])
def test_line_stats_count_parcels_damaged_and_lanes(
    database: str, request: pytest.FixtureRequest, topic_space: TopicSpace
) -> None:
    url: str = request.getfixturevalue(database)
    migrate(url)
    # Minutes 1-6: lanes a, a, b, reject (damaged), a, reject (damaged); minute 20 is out of range.
    plan = [("a", False), ("a", False), ("b", False), ("reject", True), ("a", False), ("reject", True)]
    items = [parcel(s, T0 + timedelta(minutes=s), lane, hurt) for s, (lane, hurt) in enumerate(plan, 1)]
    items.append(parcel(20, T0 + timedelta(minutes=20), "reject", True))
    engine = make_engine(url)
    ingest_messages(
        make_sessionmaker(engine),
        [
            inbound(topic_space, "gw-p", Channel.STATE, state("gw-p", True, 1, line="line-3")),
            inbound(topic_space, "gw-p", Channel.RESULTS, batch("gw-p", new_stream(), items)),
        ],
        topic_space,
    )
    engine.dispose()
    with TestClient(create_app(CloudSettings(db_url=url, topic_root=topic_space.root))) as client:
        until = (T0 + timedelta(minutes=15)).isoformat()
        stats = get(client, "/api/v1/lines/line-3/stats", since=T0.isoformat(), until=until, interval_s=300)
        # Parcels are neither inspected nor defects: the defect rate stays empty, the damaged rate does not.
        assert (stats["results"], stats["inspected"], stats["defect_rate"]) == (6, 0, None)
        assert stats["defects"] == 0
        assert (stats["parcels"], stats["damaged"]) == (6, 2)
        assert stats["damaged_rate"] == pytest.approx(2 / 6)
        assert stats["parcels_by_lane"] == {"a": 3, "reject": 2, "b": 1}
        assert list(stats["parcels_by_lane"]) == ["a", "reject", "b"]  # busiest lane first
        buckets = [(b["parcels"], b["damaged"], b["damaged_rate"]) for b in stats["buckets"]]
        assert buckets == [(4, 1, 0.25), (2, 1, 0.5), (0, 0, None)]
        # Only the range counts: from minute 19, the late damaged parcel alone.
        gw = get(client, "/api/v1/lines/line-3/stats", since=(T0 + timedelta(minutes=19)).isoformat(),
                 until=until.replace("08:15", "08:25"), interval_s=600)  # fmt: skip
        assert (gw["parcels"], gw["damaged"], gw["parcels_by_lane"]) == (1, 1, {"reject": 1})
