"""CSV export over the API: columns in their documented order, every row of the range and no other,
oldest first, filters, quoting of text with commas, quotes and newlines, and refusals."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud.db import make_engine, make_sessionmaker
from cloud.db.models import Alert
from tests.support.messages import T0
from tests.support.plant import Plant, feed, note, parcels

HOUR = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()}
RESULT_COLUMNS = [
    "id", "captured_at", "inferred_at", "received_at", "line", "gateway_id", "station", "source", "frame",
    "model_name", "model_version", "task", "label", "is_defect", "score", "latency_ms", "replayed",
    "disposition", "disposition_by", "disposition_at", "output",
]  # fmt: skip


def export(plant: Plant, kind: str, status: int = 200, role: str = "viewer", **params: Any) -> Any:
    answer = plant.client.get(f"/api/v1/export/{kind}.csv", params=params, headers=plant.headers(role))
    assert answer.status_code == status, answer.text
    if status != 200:
        return answer.json()
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8"), newline="")))


def as_dicts(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_results_export_every_row_of_the_range_oldest_first(plant: Plant) -> None:
    rows = export(plant, "results", **HOUR)
    assert rows[0] == RESULT_COLUMNS
    results = as_dicts(rows)
    # line-1's ten (minutes 1-10) and line-2's five (minutes 1-5), by capture time then id.
    assert len(results) == 15
    assert [r["captured_at"] for r in results] == sorted(r["captured_at"] for r in results)
    first = next(r for r in results if r["line"] == "line-1")
    assert first["captured_at"] == "2026-01-05T08:01:00.000000Z"
    assert first["inferred_at"] == "2026-01-05T08:01:00.020000Z"
    assert (first["gateway_id"], first["frame"], first["model_name"], first["task"]) == (
        "gw-a", "frame-1", "defect-cnn", "defect",
    )  # fmt: skip
    assert (first["is_defect"], first["score"], first["replayed"], first["disposition"]) == (
        "false", "0.9", "false", "",
    )  # fmt: skip
    output = json.loads(first["output"])  # the output's JSON as stored
    assert {k: output[k] for k in ("kind", "label", "is_defect", "score")} == {
        "kind": "defect", "label": "ok", "is_defect": False, "score": 0.9,
    }  # fmt: skip
    assert {r["id"] for r in results} == {r["id"] for r in plant.results("line-1") + plant.results("line-2")}
    # The range: since is in, until is out (minute 3 and minute 5 of line-1).
    window = as_dicts(
        export(plant, "results", line="line-1", since=(T0 + timedelta(minutes=3)).isoformat(),
               until=(T0 + timedelta(minutes=5)).isoformat())
    )  # fmt: skip
    assert [r["frame"] for r in window] == ["frame-3", "frame-4"]
    assert [r["line"] for r in as_dicts(export(plant, "results", gateway="gw-b", **HOUR))] == ["line-2"] * 5


def test_results_export_carries_dispositions_and_the_default_range_is_the_last_day(plant: Plant) -> None:
    defect = next(r["id"] for r in plant.results("line-1") if r["seq"] == 6)
    answer = plant.client.put(
        f"/api/v1/results/{defect}/disposition",
        json={"disposition": "false_reject"},
        headers=plant.headers("operator"),
    )
    assert answer.status_code == 200, answer.text
    row = next(r for r in as_dicts(export(plant, "results", **HOUR)) if r["id"] == defect)
    assert (row["disposition"], row["disposition_by"]) == ("false_reject", "token:test-operator")
    assert row["disposition_at"].endswith("Z")
    # Without since/until: the 24 hours before now. Seeded results are older; these two are not both.
    now = datetime.now(UTC)
    feed(plant, "gw-p", "line-3", parcels("line-3", now - timedelta(hours=25), [False]))
    feed(plant, "gw-q", "line-4", parcels("line-4", now - timedelta(hours=1), [True]))
    recent = as_dicts(export(plant, "results"))
    assert [(r["gateway_id"], r["label"]) for r in recent] == [("gw-q", "reject")]


def test_notes_and_dispositions_quote_text_with_commas_quotes_and_newlines(plant: Plant) -> None:
    text = 'Pump 3 leaks, again;\nsaid "tomorrow"\r\nsee log'
    feed(
        plant, "gw-n", "line-1", [note(1, text, at=T0 + timedelta(minutes=20)), note(2, "=SUM(A1:A9)", at=T0)]
    )
    notes = export(plant, "notes", **HOUR)
    assert notes[0] == [
        "id", "captured_at", "line", "gateway_id", "station", "source", "note_ref", "model_name",
        "model_version", "category", "category_score", "urgency", "urgency_score", "text",
    ]  # fmt: skip
    rows = as_dicts(notes)
    assert [r["text"] for r in rows] == ["'=SUM(A1:A9)", text]  # a formula is shown, not run
    assert (rows[1]["note_ref"], rows[1]["category"], rows[1]["urgency"], rows[1]["urgency_score"]) == (
        "note-1.txt", "electrical", "high", "0.7",
    )  # fmt: skip
    assert all(r["gateway_id"] == "gw-n" for r in rows)  # notes only: no defect result among them

    defect = next(r["id"] for r in plant.results("line-1") if r["seq"] == 3)
    body = {"disposition": "confirmed_defect", "note": 'deep, "real" scratch\nsecond line'}
    assert (
        plant.client.put(
            f"/api/v1/results/{defect}/disposition", json=body, headers=plant.headers("admin")
        ).status_code
        == 200
    )
    now = datetime.now(UTC)
    window = {
        "since": (now - timedelta(minutes=5)).isoformat(),
        "until": (now + timedelta(minutes=5)).isoformat(),
    }
    dispositions = export(plant, "dispositions", **window)
    assert dispositions[0] == [
        "result_id", "at", "actor", "disposition", "note", "line", "gateway_id", "model_name",
        "model_version", "task", "label", "captured_at",
    ]  # fmt: skip
    [row] = as_dicts(dispositions)
    assert (row["result_id"], row["note"], row["label"], row["captured_at"]) == (
        defect, body["note"], "scratch", "2026-01-05T08:03:00.000000Z",
    )  # fmt: skip
    # Dispositions are bounded by when they were set, not when their result was captured.
    assert as_dicts(export(plant, "dispositions", **HOUR)) == []


def test_alerts_export_by_opening_time_with_line_filter(plant: Plant) -> None:
    engine = make_engine(plant.db_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            for minute, line in ((50, "line-1"), (10, "line-2"), (70, "line-1")):
                session.add(Alert(line=line, gateway_id=None, subject=line, kind="defect_rate",
                                  message="-12% below, check", value=12.5, opened_at=T0 + timedelta(minutes=minute)))  # fmt: skip
    finally:
        engine.dispose()
    rows = export(plant, "alerts", **HOUR)
    assert rows[0] == [
        "id", "opened_at", "closed_at", "line", "gateway_id", "subject", "kind", "message", "value",
        "rule_id", "acknowledged_by", "acknowledged_at",
    ]  # fmt: skip
    alerts = as_dicts(rows)
    assert [(a["line"], a["opened_at"]) for a in alerts] == [
        ("line-2", "2026-01-05T08:10:00.000000Z"),
        ("line-1", "2026-01-05T08:50:00.000000Z"),
    ]
    assert (alerts[0]["closed_at"], alerts[0]["message"], alerts[0]["value"]) == (
        "",
        "'-12% below, check",
        "12.5",
    )
    assert [a["line"] for a in as_dicts(export(plant, "alerts", line="line-1", **HOUR))] == ["line-1"]


def test_export_names_its_file_and_refuses_bad_requests(plant: Plant) -> None:
    answer = plant.client.get(
        "/api/v1/export/results.csv", params={**HOUR, "line": "line 1/x"}, headers=plant.headers("viewer")
    )
    assert answer.headers["content-disposition"] == (
        'attachment; filename="results-line_1_x-20260105T080000Z-20260105T090000Z.csv"'
    )
    assert plant.client.get("/api/v1/export/results.csv").status_code == 401
    wrong = export(plant, "pictures", 422)["detail"]
    assert wrong == "kind: 'pictures' cannot be exported; choose one of results, notes, dispositions, alerts"
    assert (
        "must be before" in export(plant, "results", 422, since=HOUR["until"], until=HOUR["since"])["detail"]
    )
    naive = export(plant, "alerts", 422, since="2026-01-05T08:00:00")["detail"][0]
    assert naive["loc"] == ["query", "since"]
    assert "timezone" in naive["msg"]
