"""Operators label a note's category (a ``labelled`` disposition, audited), and the labelled notes
export as the JSONL a notes training run reads."""

from __future__ import annotations

import json
from typing import Any

from tests.support.plant import Plant, feed, note


def put(plant: Plant, result_id: str, role: str, status: int = 200, **body: Any) -> Any:
    answer = plant.client.put(
        f"/api/v1/results/{result_id}/disposition", json=body, headers=plant.headers(role)
    )
    assert answer.status_code == status, answer.text
    return answer.json()


def export(plant: Plant, role: str = "viewer", status: int = 200, **params: Any) -> list[dict[str, Any]]:
    answer = plant.client.get("/api/v1/notes/labelled.jsonl", params=params, headers=plant.headers(role))
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in answer.text.splitlines()]


def _notes(plant: Plant) -> dict[int, str]:
    feed(plant, "gw-n", "line-4", [note(1, "Gerät 3: Hydrauliköl tropft", line="line-4"),
                                   note(2, "fuse F4 keeps blowing", line="line-4")])  # fmt: skip
    return {r["seq"]: r["id"] for r in plant.results("line-4")}


def test_an_operator_labels_a_notes_category_and_the_audit_log_says_who(plant: Plant) -> None:
    ids = _notes(plant)
    answer = put(plant, ids[1], "operator", disposition="labelled", true_label="hydraulic_pneumatic")
    assert (answer["label"], answer["true_label"]) == ("electrical", "hydraulic_pneumatic")
    assert answer["actor"] == "token:test-operator"
    put(plant, ids[1], "admin", disposition="labelled", true_label="mechanical")  # a change of mind
    (entry, first) = plant.get("/audit", role="admin", action="disposition.set")
    assert (entry["actor"], entry["target"]) == ("token:test-admin", ids[1])
    assert {k: entry["details"][k] for k in ("true_label", "model_label", "previous")} == {
        "true_label": "mechanical", "model_label": "electrical", "previous": "labelled",
    }  # fmt: skip
    assert first["details"]["true_label"] == "hydraulic_pneumatic"
    shown = {r["id"]: r for r in plant.results("line-4")}[ids[1]]["disposition"]
    assert (shown["disposition"], shown["true_label"]) == ("labelled", "mechanical")


def test_labels_are_refused_unless_a_known_category_of_a_note(plant: Plant) -> None:
    ids = _notes(plant)
    assert plant.client.put(
        f"/api/v1/results/{ids[1]}/disposition", json={"disposition": "labelled", "true_label": "safety"},
        headers=plant.headers("viewer"),
    ).status_code == 403  # fmt: skip
    unknown = put(plant, ids[1], "operator", 422, disposition="labelled", true_label="plumbing")["detail"]
    assert "needs true_label, one of electrical, mechanical" in unknown
    assert (
        "(got 'plumbing')"
        in put(plant, ids[1], "operator", 422, disposition="labelled", true_label="plumbing")["detail"]
    )
    assert "got None" in put(plant, ids[1], "operator", 422, disposition="labelled")["detail"]
    misplaced = put(plant, ids[1], "operator", 422, disposition="needs_review", true_label="safety")
    assert misplaced["detail"] == "disposition: true_label goes with labelled only"
    defect = {r["seq"]: r["id"] for r in plant.results("line-1")}[3]
    other = put(plant, defect, "operator", 422, disposition="labelled", true_label="safety")["detail"]
    assert "is a defect result; labelled labels results of notes only" in other
    assert plant.get("/dispositions", line="line-4")["items"] == []  # nothing was stored


def test_labelled_notes_export_as_training_jsonl(plant: Plant) -> None:
    ids = _notes(plant)
    assert export(plant) == []
    put(plant, ids[1], "operator", disposition="labelled", true_label="hydraulic_pneumatic")
    put(plant, ids[2], "operator", disposition="needs_review")  # not a label: not exported
    (row,) = export(plant, line="line-4")
    assert {k: row[k] for k in ("text", "category", "model_category", "model_urgency", "labelled_by")} == {
        "text": "Gerät 3: Hydrauliköl tropft", "category": "hydraulic_pneumatic",
        "model_category": "electrical", "model_urgency": "high", "labelled_by": "token:test-operator",
    }  # fmt: skip
    assert "urgency" not in row  # the operator labelled the category only
    assert (row["result_id"], row["line"], row["gateway_id"]) == (ids[1], "line-4", "gw-n")
    assert export(plant, line="line-1") == []
    assert export(plant, since=row["labelled_at"]) == [row]
    assert export(plant, until=row["labelled_at"]) == []
    refused = plant.client.get(
        "/api/v1/notes/labelled.jsonl", params={"since": row["labelled_at"], "until": row["labelled_at"]},
        headers=plant.headers("viewer"),
    )  # fmt: skip
    assert refused.status_code == 422
    assert plant.client.get("/api/v1/notes/labelled.jsonl").status_code == 401
