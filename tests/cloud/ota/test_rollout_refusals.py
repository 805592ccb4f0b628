"""A rollout that could never finish is refused up front, saying why: unknown gateways, a slot
another rollout is updating, a model of another task; and the slot, when left out, is chosen."""

from __future__ import annotations

import threading

from cloud.db import make_engine, make_sessionmaker
from cloud.ota.rollouts import create_rollout
from cloud.ota.schemas import RolloutCreate, Target
from cloud.registry.service import RegistryError
from tests.support.yard import Yard, loaded


def test_unknown_gateway_ids_are_refused_naming_them_and_the_known_ones(yard: Yard) -> None:
    """Fault: a rollout to a gateway id that never connected ran until its install timeout,
    republishing all along. Promise: 422 naming the unknown ids and the known ones."""
    for gw in ("gw-1", "gw-2"):
        yard.birth(gw, loaded("defect-cnn", "main", "defect"))
    answer = yard.post(slot="main", target={"gateways": ["gw-1", "gw-9", "gw-77"]})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert "gw-77, gw-9 never connected" in detail
    assert "known gateways: gw-1, gw-2" in detail
    assert yard.client.get("/api/v1/rollouts", headers=yard.admin).json() == []


def test_second_rollout_on_the_same_gateway_slot_is_refused_until_the_first_ends(yard: Yard) -> None:
    """Fault: two rollouts could stage the same slot at once and overwrite each other. Promise:
    409 naming the other rollout and what to do, while it runs or is paused; free once it ended."""
    for gw in ("gw-1", "gw-2"):
        yard.birth(gw, loaded("defect-cnn", "main", "defect"), loaded("notes-llm", "notes", "notes"))
    first = yard.create(target={"gateways": ["gw-1"]})["id"]
    both = {"gateways": ["gw-1", "gw-2"]}
    refused = yard.post(target=both)
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert f"slot 'main' of gw-1 is already being updated by rollout {first}" in detail
    assert "defect-cnn 1.1, running" in detail
    assert f"factoryctl rollouts abort {first}" in detail
    yard.act(first, "pause")
    assert yard.post(target=both).status_code == 409
    assert yard.create(target={"gateways": ["gw-2"]})["slot"] == "main"  # another gateway: fine
    yard.act(first, "abort")
    # gw-2 is still taken by the rollout just created; gw-1 alone is free again.
    assert yard.post(target=both).status_code == 409
    assert yard.create(target={"gateways": ["gw-1"]})["state"] == "running"


def test_model_of_another_task_does_not_fit_the_slot(yard: Yard) -> None:
    """Fault: a defect model could be offered to a slot running a notes model. Promise: 422
    naming both tasks; gateways that never reported their models get the benefit of the doubt."""
    yard.birth("gw-1", loaded("notes-llm", "notes", "notes"), loaded("defect-cnn", "main", "defect"))
    yard.birth("gw-2")  # no models reported
    answer = yard.post(slot="notes", target={"gateways": ["gw-1"]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == "defect-cnn is a defect model; slot notes of gw-1 runs a notes model"
    assert yard.create(slot="notes", target={"gateways": ["gw-2"]})["slot"] == "notes"


def test_slot_left_out_is_the_one_running_the_model_or_its_task(yard: Yard) -> None:
    """Fault: the slot defaulted to 'main', which no demo gateway has. Promise: with no slot the
    rollout takes the slot running a model of this name, else the one slot of the model's task."""
    yard.birth("gw-1", loaded("notes-llm", "notes", "notes"), loaded("defect-cnn", "defect", "defect"))
    created = yard.create(target={"gateways": ["gw-1"]})
    assert created["slot"] == "defect"
    yard.act(created["id"], "abort")
    # scratch-net (a defect model) runs nowhere yet: the gateway's one defect slot takes it.
    assert yard.create(model_name="scratch-net", version="2.0")["slot"] == "defect"


def test_slot_left_out_is_refused_when_it_is_ambiguous(yard: Yard) -> None:
    """Promise: when no single slot runs the model (or a model of its task), 422 naming the candidates."""
    yard.birth("gw-1", loaded("scratch-net", "cam-1", "defect", "1.0"))
    yard.birth("gw-2", loaded("scratch-net", "cam-2", "defect", "1.0"))
    yard.birth("gw-3", loaded("notes-llm", "notes", "notes"))
    two = yard.post(model_name="scratch-net", version="2.0", target={"gateways": ["gw-1", "gw-2"]})
    assert two.status_code == 422, two.text
    assert "several slots: cam-1, cam-2" in two.json()["detail"]
    assert "give the slot to update" in two.json()["detail"]
    none = yard.post(target={"gateways": ["gw-3"]})
    assert none.status_code == 422, none.text
    assert none.json()["detail"] == (
        "slot not given and cannot be chosen: gw-3 has no slot running a defect model "
        "(its slots: notes); give the slot to update"
    )


def test_shrinking_waves_are_refused(yard: Yard) -> None:
    """Fault: '50%,10%' was accepted and the smaller wave silently dropped. Promise: 422 saying
    waves are cumulative."""
    yard.birth("gw-1", loaded("defect-cnn", "main", "defect"))
    answer = yard.post(waves="50%,10%")
    assert answer.status_code == 422, answer.text
    assert "wave '10%' in '50%,10%' is smaller than an earlier percentage" in answer.text
    assert yard.post(waves="3,1").status_code == 422
    assert yard.create(waves="1,10%,100%")["waves"] == [1]  # a count then percentages may mix


def test_two_creates_in_flight_at_once_let_exactly_one_through(yard: Yard) -> None:
    """Fault: the overlap check reads committed rollouts, so two creates in flight at once (two
    admins, two API processes) both passed it and staged one slot twice. Promise: creates queue
    behind each other; the second sees the first and gets 409."""
    yard.birth("gw-1", loaded("defect-cnn", "main", "defect"))
    engine = make_engine(yard.settings.db_url)
    sessions = make_sessionmaker(engine)
    req = RolloutCreate(
        model_name="defect-cnn", version="1.1", target=Target(gateways=["gw-1"]), waves="100%"
    )
    outcome: dict[str, object] = {}

    def second_admin() -> None:
        try:
            with sessions.begin() as session:
                outcome["second"] = create_rollout(session, req, "bea").id
        except RegistryError as exc:
            outcome["second"] = exc.status

    try:
        with sessions.begin() as first:
            first_id = create_rollout(first, req, "ada").id  # planned, not committed yet
            other = threading.Thread(target=second_admin)
            other.start()
            other.join(1.0)
            assert other.is_alive(), f"the second create did not wait for the first: {outcome}"
        other.join(30)
        assert outcome == {"second": 409}
        listed = yard.client.get("/api/v1/rollouts", headers=yard.admin).json()
        assert [r["id"] for r in listed] == [first_id]
    finally:
        engine.dispose()
