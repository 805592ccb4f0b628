"""The API's error model, one case per fault the conformance run found (its figures are in
docs/ARCHITECTURE.md, "The API's error model, and its conformance")."""

from __future__ import annotations

from typing import Any

from tests.support.plant import Plant


def _schema(plant: Plant) -> dict[str, Any]:
    schema: dict[str, Any] = plant.client.app.openapi()  # type: ignore[attr-defined]
    return schema


def test_numbers_past_what_the_database_holds_are_a_422_naming_them(plant: Plant) -> None:
    admin = plant.headers("admin")
    for path, params in (
        ("/api/v1/gateways/gw-a/events", {"offset": 10**20}),
        ("/api/v1/results", {"offset": 2**63}),
    ):
        answer = plant.client.get(path, params=params, headers=admin)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"] == ["query", "offset"]
    answer = plant.client.patch("/api/v1/alert-rules/99999999999", json={"threshold": 1}, headers=admin)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["path", "rule_id"]


def test_text_the_database_cannot_store_is_a_422(plant: Plant) -> None:
    body = {"site": "hall\u0000a"}
    answer = plant.client.patch("/api/v1/gateways/gw-a", json=body, headers=plant.headers("admin"))
    assert answer.status_code == 422, answer.text
    assert "NUL" in answer.json()["detail"]
    answer = plant.client.get(
        "/api/v1/results", params={"line": "line\x001"}, headers=plant.headers("viewer")
    )
    assert answer.status_code == 422, answer.text


def test_a_time_is_iso_text_not_a_number_of_seconds(plant: Plant) -> None:
    answer = plant.client.get("/api/v1/events", params={"since": "0.5"}, headers=plant.headers("viewer"))
    assert answer.status_code == 422, answer.text
    assert "is not an ISO 8601 date-time" in answer.json()["detail"][0]["msg"]


def test_a_405_lists_every_method_of_the_path(plant: Plant) -> None:
    answer = plant.client.delete("/api/v1/tokens", headers=plant.headers("admin"))
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["allow"].split(",")} >= {"GET", "POST"}


def test_an_alert_rule_patch_takes_what_it_documents(plant: Plant) -> None:
    admin = plant.headers("admin")
    rule = {"line": "line-1", "kind": "defect_rate", "threshold": 5, "window_s": 600}
    made = plant.client.post("/api/v1/alert-rules", json=rule, headers=admin)
    assert made.status_code == 201, made.text
    path = f"/api/v1/alert-rules/{made.json()['id']}"
    kept = plant.client.patch(path, json={"enabled": None, "threshold": 7}, headers=admin)
    assert kept.status_code == 200, kept.text
    assert kept.json()["enabled"] is True
    assert kept.json()["threshold"] == 7
    # The schema says a JSON boolean and number: text that looks like one is refused.
    for body in ({"enabled": "false"}, {"threshold": "7"}):
        refused = plant.client.patch(path, json=body, headers=admin)
        assert refused.status_code == 422, (body, refused.text)


def test_the_document_describes_every_refusal(plant: Plant) -> None:
    schema = _schema(plant)
    detail = schema["components"]["schemas"]["HTTPValidationError"]["properties"]["detail"]
    assert [kind.get("type") for kind in detail["anyOf"]] == ["string", "array"]
    ack = schema["paths"]["/api/v1/alerts/{alert_id}/ack"]["post"]["responses"]
    assert {"401", "403", "404", "422"} <= set(ack)
    assert ack["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorMessage"
    }
    labels = schema["components"]["schemas"]["LabelsUpdate"]["properties"]["labels"]
    assert labels["additionalProperties"] is False  # keys outside the pattern are refused
    login = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "403" not in login  # open to anyone: no role to lack
    # A handler's 422 sentence matches the documented body.
    refused = plant.client.get("/api/v1/export/nothing.csv", headers=plant.headers("viewer"))
    assert refused.status_code == 422
    assert isinstance(refused.json()["detail"], str)
