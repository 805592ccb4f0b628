"""Maintenance notes through the API: their words, category and urgency, the task filter, and line
figures that keep each task apart (notes are never counted into a camera line's results)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from cloud.api import create_app
from cloud.config import CloudSettings
from protocol.topics import TopicSpace
from tests.support.database import NOTES, seed, seed_notes_and_events
from tests.support.messages import T0
from tests.support.testclient import TestClient

WINDOW = {"since": T0.isoformat(), "until": (T0 + timedelta(minutes=15)).isoformat(), "interval_s": 300}


def _get(client: TestClient, path: str, status: int = 200, **params: Any) -> Any:
    answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    return answer.json()


def test_a_note_reaches_the_api_with_its_words_category_and_urgency(notes_client: TestClient) -> None:
    page = _get(notes_client, "/api/v1/results", line="line-1", task="notes")
    shown = [(r["output"]["text"], r["output"]["category"], r["output"]["urgency"]) for r in page["items"]]
    # Newest first, each word as written: newline, tab, backslashes and umlauts survive ingest.
    assert shown == [(text, category, urgency) for _, text, category, urgency in reversed(NOTES)]
    assert {r["task"] for r in page["items"]} == {"notes"}
    assert page["items"][0]["label"] == "electrical"  # a note's label is its category


def test_an_unknown_task_is_refused_naming_it_and_the_known_tasks(notes_client: TestClient) -> None:
    for path in ("/api/v1/results", "/api/v1/lines/line-1/stats"):
        detail = _get(notes_client, path, 422, task="parcels")["detail"]
        known = "defect, classification, parcel, notes"
        assert detail == f"task 'parcels' is not a result task; known tasks: {known}"
    schema = _get(notes_client, "/openapi.json")["paths"]["/api/v1/results"]["get"]["parameters"]
    task = next(p for p in schema if p["name"] == "task")
    assert task["schema"]["enum"] == ["defect", "classification", "parcel", "notes"]


def test_note_filters_with_another_task_are_refused(notes_client: TestClient) -> None:
    detail = _get(notes_client, "/api/v1/results", 422, task="defect", urgency="high")["detail"]
    assert detail == "category and urgency filter notes; task 'defect' has neither"
    both = _get(notes_client, "/api/v1/results", category="safety", urgency="high")["items"]
    assert [r["output"]["text"] for r in both] == ["Guard door interlock bypassed on cell 2"]


@contextmanager
def _client(url: str, topics: TopicSpace) -> Iterator[TestClient]:
    seed(url, topics)
    seed_notes_and_events(url, topics)
    with TestClient(create_app(CloudSettings(db_url=url, topic_root=topics.root))) as client:
        yield client


@pytest.mark.parametrize("database", ["pg_url", "sqlite_url"])
def test_line_stats_keep_each_tasks_figures_apart(
    database: str, request: pytest.FixtureRequest, topic_space: TopicSpace
) -> None:
    with _client(request.getfixturevalue(database), topic_space) as client:
        every = _get(client, "/api/v1/lines/line-1/stats", **WINDOW)
        camera = _get(client, "/api/v1/lines/line-1/stats", task="defect", **WINDOW)
        notes = _get(client, "/api/v1/lines/line-1/stats", task="notes", **WINDOW)
    assert (every["task"], every["results"]) == (None, 14)
    assert every["results_by_task"] == {"defect": 10, "notes": 4}
    assert (every["notes"], every["urgent_notes"]) == (4, 2)
    # Minutes 0-5: results 1-4 and notes at 2.5 (medium) and 4.5 (high); 5-10: results 5-9, notes
    # at 6.5 (low) and 8.5 (high); 10-15: result 10.
    assert [(b["results"], b["notes"], b["urgent_notes"]) for b in every["buckets"]] == [
        (6, 2, 1), (7, 2, 1), (1, 0, 0)
    ]  # fmt: skip
    # The camera's figures alone: what throughput and rates are made of.
    assert (camera["task"], camera["results"], camera["results_by_task"]) == ("defect", 10, {"defect": 10})
    assert [b["results"] for b in camera["buckets"]] == [4, 5, 1]
    assert (camera["notes"], camera["defects"], camera["defect_rate"]) == (0, 3, pytest.approx(0.3))
    # The notes' figures alone: nothing inspected, no defect rate.
    assert (notes["results"], notes["notes"], notes["urgent_notes"]) == (4, 4, 2)
    assert (notes["inspected"], notes["defect_rate"], notes["defects_by_label"]) == (0, None, {})
