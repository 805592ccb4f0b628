"""Every query parameter of the list endpoints changes the answer, the way its description says.

The parameters are read from the app's OpenAPI schema: a parameter added to one of these endpoints
without a case here fails :func:`test_every_query_parameter_has_a_case`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.support.messages import T0
from tests.support.testclient import TestClient

RESULTS, EVENTS, STATS = "/api/v1/results", "/api/v1/events", "/api/v1/lines/{line}/stats"
STATS_PATH = STATS.format(line="line-1")
STATS_BASE = {"since": T0.isoformat(), "until": (T0 + timedelta(minutes=15)).isoformat(), "interval_s": 300}
Answer = dict[str, Any]


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


@dataclass(frozen=True)
class Case:
    """One parameter's value (or how to get it from a first answer) and what the answer then holds."""

    value: Any
    holds: Callable[[Answer], bool]

    def params(self, client: TestClient, path: str, base: dict[str, Any]) -> dict[str, Any]:
        value = self.value(client, path, base) if callable(self.value) else self.value
        return {**base, **value}


def _cursor_of_a_first_page(client: TestClient, path: str, base: dict[str, Any]) -> dict[str, Any]:
    first = client.get(path, params={**base, "limit": 2}).json()
    return {"cursor": first["next_cursor"]}


def _items(check: Callable[[dict[str, Any]], bool], count: int) -> Callable[[Answer], bool]:
    """The answer holds ``count`` items, each passing ``check``."""
    return lambda answer: len(answer["items"]) == count and all(check(i) for i in answer["items"])


# Seeded (tests.support.database): line-1 gw-a 10 defect results, minutes 1-10 (3 defects, label
# scratch) and 4 notes (2.5-8.5 min, 2 of high urgency, one safety); line-2 gw-b 5 classifications
# by parcel-cls; events gw-a info ota (1 min), gw-a warning outbox_shed (2 min), gw-b error ota (3 min).
CASES: dict[str, tuple[str, dict[str, Any], dict[str, Case]]] = {
    RESULTS: (RESULTS, {}, {
        "gateway": Case({"gateway": "gw-b"}, _items(lambda r: r["gateway_id"] == "gw-b", 5)),
        "line": Case({"line": "line-2"}, _items(lambda r: r["line"] == "line-2", 5)),
        "task": Case({"task": "notes"}, _items(lambda r: r["task"] == "notes" and r["output"]["text"], 4)),
        "model": Case({"model": "parcel-cls"}, _items(lambda r: r["model_name"] == "parcel-cls", 5)),
        "label": Case({"label": "scratch"}, _items(lambda r: r["label"] == "scratch", 3)),
        "is_defect": Case({"is_defect": "false"}, _items(lambda r: r["is_defect"] is False, 7)),
        "category": Case({"category": "safety"}, _items(lambda r: r["output"]["category"] == "safety", 1)),
        "urgency": Case({"urgency": "high"}, _items(lambda r: r["output"]["urgency"] == "high", 2)),
        "since": Case({"since": _at(8)}, _items(lambda r: r["captured_at"] >= "2026-01-05T08:08", 4)),
        "until": Case({"until": _at(2)}, _items(lambda r: r["captured_at"] < "2026-01-05T08:02", 2)),
        "limit": Case({"limit": 3}, lambda a: len(a["items"]) == 3 and a["next_offset"] == 3),
        "offset": Case({"offset": 17}, lambda a: len(a["items"]) == 2 and a["offset"] == 17),
        "cursor": Case(_cursor_of_a_first_page, lambda a: len(a["items"]) == 17),
    }),
    EVENTS: (EVENTS, {}, {
        "gateway": Case({"gateway": "gw-b"}, _items(lambda e: e["gateway_id"] == "gw-b", 1)),
        "kind": Case({"kind": "ota"}, _items(lambda e: e["kind"] == "ota", 2)),
        "level": Case({"level": "warning"}, _items(lambda e: e["level"] == "warning", 1)),
        "since": Case({"since": _at(2)}, _items(lambda e: e["timestamp"] >= "2026-01-05T08:02", 2)),
        "limit": Case({"limit": 1}, lambda a: len(a["items"]) == 1 and a["next_offset"] == 1),
        "offset": Case({"offset": 2}, _items(lambda e: e["message"] == "downloading", 1)),
        "cursor": Case(_cursor_of_a_first_page, _items(lambda e: e["message"] == "downloading", 1)),
    }),
    STATS: (STATS_PATH, STATS_BASE, {
        "since": Case({"since": _at(5)}, lambda s: s["results"] == 8 and len(s["buckets"]) == 2),
        "until": Case({"until": _at(5)}, lambda s: s["results"] == 6 and len(s["buckets"]) == 1),
        "interval_s": Case({"interval_s": 60}, lambda s: len(s["buckets"]) == 15),
        "task": Case({"task": "notes"}, lambda s: (s["results"], s["notes"], s["inspected"]) == (4, 4, 0)),
    }),
}  # fmt: skip


def _query_parameters(client: TestClient, path: str) -> set[str]:
    operation = client.get("/openapi.json").json()["paths"][path]["get"]
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


@pytest.mark.parametrize("path", list(CASES))
def test_every_query_parameter_has_a_case(notes_client: TestClient, path: str) -> None:
    documented = _query_parameters(notes_client, path)
    assert documented, f"no query parameters found for {path} in the OpenAPI schema"
    assert documented == set(CASES[path][2]), f"{path}: parameters without a case or cases without one"


@pytest.mark.parametrize("path", list(CASES))
def test_each_query_parameter_changes_the_answer_as_described(notes_client: TestClient, path: str) -> None:
    url, base, cases = CASES[path]
    plain = notes_client.get(url, params=base)
    assert plain.status_code == 200, plain.text
    for name, case in cases.items():
        answer = notes_client.get(url, params=case.params(notes_client, url, base))
        assert answer.status_code == 200, f"{name}: {answer.text}"
        assert answer.json() != plain.json(), f"{path}: {name} did not change the answer"
        assert case.holds(answer.json()), f"{path}: {name} gave {answer.json()}"
