"""Dispositions: who may set them, which results take which, their history in the audit log, the
list with its filters and cursor, results and the gallery carrying them, and the false-reject rate."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from cloud.db import make_engine, make_sessionmaker
from cloud.retention import purge_older_than
from tests.support.messages import T0
from tests.support.plant import Plant, feed, parcels


def put(plant: Plant, result_id: str, role: str, status: int = 200, **body: Any) -> Any:
    answer = plant.client.put(
        f"/api/v1/results/{result_id}/disposition", json=body, headers=plant.headers(role)
    )
    assert answer.status_code == status, answer.text
    return answer.json()


def by_seq(plant: Plant, line: str = "line-1") -> dict[int, str]:
    return {r["seq"]: r["id"] for r in plant.results(line)}


def test_operators_and_admins_set_dispositions_viewers_and_strangers_cannot(plant: Plant) -> None:
    defect = by_seq(plant)[3]
    path = f"/api/v1/results/{defect}/disposition"
    body = {"disposition": "false_reject"}
    assert plant.client.put(path, json=body).status_code == 401
    assert plant.client.put(path, json=body, headers={"Authorization": "Bearer fe_forged"}).status_code == 401
    refused = plant.client.put(path, json=body, headers=plant.headers("viewer"))
    assert refused.status_code == 403
    assert "needs the operator role" in refused.json()["detail"]
    assert plant.client.get(path).status_code == 401  # production: reads need a token too
    assert plant.client.get("/api/v1/dispositions").status_code == 401
    put(plant, defect, "operator", disposition="false_reject")
    put(plant, defect, "admin", disposition="confirmed_defect")
    assert plant.get(f"/results/{defect}/disposition")["actor"] == "token:test-admin"


def test_a_disposition_carries_what_re_teaching_needs_and_results_carry_it(plant: Plant) -> None:
    ids = by_seq(plant)
    answer = put(plant, ids[6], "operator", disposition="false_reject", note="  a reflection, not a scratch ")
    assert {k: v for k, v in answer.items() if k != "at"} == {
        "result_id": ids[6],
        "line": "line-1",
        "gateway_id": "gw-a",
        "model_name": "defect-cnn",
        "model_version": "1.0",
        "task": "defect",
        "label": "scratch",
        "captured_at": "2026-01-05T08:06:00Z",
        "disposition": "false_reject",
        "true_label": None,
        "note": "a reflection, not a scratch",
        "actor": "token:test-operator",
    }
    assert answer["at"].endswith("Z")
    assert plant.get(f"/results/{ids[6]}/disposition") == answer
    results = {r["id"]: r for r in plant.results("line-1")}
    assert results[ids[6]]["disposition"] == {
        "disposition": "false_reject",
        "true_label": None,
        "note": "a reflection, not a scratch",
        "actor": "token:test-operator",
        "at": answer["at"],
    }
    assert results[ids[3]]["disposition"] is None
    gallery = {d["id"]: d for d in plant.get("/lines/line-1/defects")}
    assert gallery[ids[6]]["disposition"]["disposition"] == "false_reject"
    assert gallery[ids[9]]["disposition"] is None


def test_changing_a_disposition_keeps_one_row_and_the_history_in_the_audit_log(plant: Plant) -> None:
    defect = by_seq(plant)[9]
    put(plant, defect, "operator", disposition="needs_review")
    put(plant, defect, "operator", disposition="false_reject", note="checked at the bench")
    put(plant, defect, "admin", disposition="confirmed_defect")
    assert [d["disposition"] for d in plant.get("/dispositions")["items"]] == ["confirmed_defect"]
    trail = plant.get("/audit", role="admin", action="disposition.set")
    assert [(e["actor"], e["target"]) for e in trail] == [
        ("token:test-admin", defect),
        ("token:test-operator", defect),
        ("token:test-operator", defect),
    ]
    assert [(e["details"]["disposition"], e["details"]["previous"]) for e in trail] == [
        ("confirmed_defect", "false_reject"),
        ("false_reject", "needs_review"),
        ("needs_review", None),
    ]
    assert trail[1]["details"]["note"] == "checked at the bench"
    assert trail[0]["details"]["line"] == "line-1"


def test_only_flagged_results_take_a_verdict_any_result_may_need_review(plant: Plant) -> None:
    good = by_seq(plant)[1]
    refused = put(plant, good, "operator", 422, disposition="false_reject")["detail"]
    assert "was not flagged by its model (is_defect false)" in refused
    assert "cannot be false_reject" in refused
    assert "use needs_review" in refused
    put(plant, good, "operator", 422, disposition="confirmed_defect")
    assert put(plant, good, "operator", disposition="needs_review")["disposition"] == "needs_review"
    # A classification result carries no defect flag at all.
    classified = by_seq(plant, "line-2")[1]
    assert (
        "a classification result has no defect flag"
        in put(plant, classified, "operator", 422, disposition="confirmed_defect")["detail"]
    )
    # A damaged parcel is flagged (without is_defect); an undamaged one is not.
    feed(plant, "gw-p", "line-3", parcels("line-3", T0, [True, False]))
    parcel_ids = by_seq(plant, "line-3")
    assert put(plant, parcel_ids[1], "operator", disposition="false_reject")["task"] == "parcel"
    assert (
        "parcel not damaged"
        in put(plant, parcel_ids[2], "operator", 422, disposition="false_reject")["detail"]
    )


def test_bad_dispositions_are_refused_naming_the_field(plant: Plant) -> None:
    defect = by_seq(plant)[3]
    wrong = put(plant, defect, "operator", 422, disposition="maybe")["detail"][0]
    assert wrong["loc"] == ["body", "disposition"]
    assert "'confirmed_defect', 'false_reject', 'needs_review' or 'labelled'" in wrong["msg"]
    assert put(plant, defect, "operator", 422)["detail"][0]["loc"] == ["body", "disposition"]
    extra = put(plant, defect, "operator", 422, disposition="needs_review", by="me")["detail"][0]
    assert extra["loc"] == ["body", "by"]
    long_note = put(plant, defect, "operator", 422, disposition="needs_review", note="x" * 1001)["detail"][0]
    assert long_note["loc"] == ["body", "note"]
    assert "1000" in long_note["msg"]
    nul = put(plant, defect, "operator", 422, disposition="needs_review", note="a\x00b")["detail"][0]
    assert nul["loc"] == ["body", "note"]
    assert "NUL" in nul["msg"]
    unknown = uuid.uuid4()
    assert put(plant, str(unknown), "operator", 404, disposition="needs_review")["detail"] == (
        f"result {unknown} not found"
    )
    assert plant.get(f"/results/{unknown}/disposition", status=404)["detail"] == f"result {unknown} not found"
    assert plant.get(f"/results/{defect}/disposition", status=404)["detail"] == (
        f"result {defect} has no disposition"
    )
    assert put(plant, "not-a-uuid", "operator", 422, disposition="needs_review")["detail"][0]["loc"] == [
        "path",
        "result_id",
    ]
    assert plant.get("/dispositions")["items"] == []  # nothing refused was stored


def test_dispositions_list_filters_and_pages_by_cursor(plant: Plant) -> None:
    ids = by_seq(plant)
    feed(plant, "gw-p", "line-3", parcels("line-3", T0, [True]))
    parcel = by_seq(plant, "line-3")[1]
    put(plant, ids[3], "operator", disposition="confirmed_defect")
    put(plant, ids[6], "operator", disposition="false_reject")
    put(plant, ids[9], "operator", disposition="false_reject")
    put(plant, ids[1], "operator", disposition="needs_review")
    put(plant, parcel, "operator", disposition="false_reject")
    everything = plant.get("/dispositions")["items"]
    # Most recently set first.
    assert [d["result_id"] for d in everything] == [parcel, ids[1], ids[9], ids[6], ids[3]]

    def listed(**params: Any) -> list[str]:
        return [d["result_id"] for d in plant.get("/dispositions", **params)["items"]]

    assert listed(line="line-1", disposition="false_reject") == [ids[9], ids[6]]
    assert listed(model="parcel-det") == [parcel]
    assert listed(gateway="gw-p") == [parcel]
    assert listed(model="defect-cnn", model_version="1.0", disposition="needs_review") == [ids[1]]
    middle = everything[2]["at"]
    assert listed(since=middle) == [parcel, ids[1], ids[9]]
    assert listed(until=middle) == [ids[6], ids[3]]
    seen, page = [], plant.get("/dispositions", limit=2)
    seen += [d["result_id"] for d in page["items"]]
    while page["next_cursor"]:
        page = plant.get("/dispositions", limit=2, cursor=page["next_cursor"])
        seen += [d["result_id"] for d in page["items"]]
    assert seen == [d["result_id"] for d in everything]
    bad = plant.get("/dispositions", status=422, disposition="wrong")["detail"][0]
    assert bad["loc"] == ["query", "disposition"]
    assert "'false_reject'" in bad["msg"]
    assert "before" in plant.get("/dispositions", status=422, since=middle, until=middle)["detail"]
    assert "not valid" in plant.get("/dispositions", status=422, cursor="!!!")["detail"]


def test_line_stats_measure_the_false_reject_rate_of_the_range(plant: Plant) -> None:
    ids = by_seq(plant)
    put(plant, ids[3], "operator", disposition="confirmed_defect")
    put(plant, ids[6], "operator", disposition="false_reject")
    put(plant, ids[9], "operator", disposition="confirmed_defect")
    put(plant, ids[2], "operator", disposition="needs_review")
    whole = plant.get(
        "/lines/line-1/stats", since=T0.isoformat(), until=(T0 + timedelta(hours=1)).isoformat()
    )
    assert whole["review"] == {
        "reviewed": 3,
        "false_rejects": 1,
        "false_reject_rate": pytest.approx(1 / 3),
        "needs_review": 1,
    }
    # By capture time: minutes 5-8 hold seq 6 alone of the reviewed ones.
    window = plant.get(
        "/lines/line-1/stats",
        since=(T0 + timedelta(minutes=5)).isoformat(),
        until=(T0 + timedelta(minutes=8)).isoformat(),
    )
    assert (window["review"]["reviewed"], window["review"]["false_reject_rate"]) == (1, 1.0)
    assert plant.get("/lines/line-2/stats", since=T0.isoformat())["review"] == {
        "reviewed": 0,
        "false_rejects": 0,
        "false_reject_rate": None,
        "needs_review": 0,
    }


def test_retention_deletes_a_disposition_with_its_result(plant: Plant) -> None:
    ids = by_seq(plant)
    put(plant, ids[3], "operator", disposition="confirmed_defect")
    engine = make_engine(plant.db_url)
    try:
        purge_older_than(make_sessionmaker(engine), days=1, now=T0 + timedelta(days=1, minutes=5))
    finally:
        engine.dispose()
    assert plant.get("/dispositions")["items"] == []
    assert 9 in by_seq(plant)  # later results and their (absent) dispositions stay
