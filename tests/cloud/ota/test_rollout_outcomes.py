"""An aborted rollout says what the abort did to each gateway, the list says why and how many went
back, and a rollout the gateways would refuse (a version not above the slot's) is refused up front."""

from __future__ import annotations

import pytest

from cloud.console.rollout_view import rollout_context
from tests.support.yard import Yard, loaded

# gw-1 runs defect-cnn 1.0 in slot "main" and has reported it committed.
pytestmark = pytest.mark.usefixtures("gw1_runs_1_0")


def test_abort_during_the_health_window_says_the_gateway_was_sent_back(yard: Yard) -> None:
    """Fault: a manual abort during the health window froze the gateway as "pending" for good and
    the wave gate read "0 of 1" in green, though the abort sent it back. Promise: the outcome says
    it was sent back to its previous version, keeps "was pending · health_window", and no gate of
    the aborted rollout reads green."""
    rollout = yard.create()["id"]
    yard.tick()
    yard.report("gw-1", "1.1", yard.revision("gw-1"), phase="health_window")
    yard.tick()
    yard.act(rollout, "abort")

    detail = yard.get(rollout)
    gw = detail["gateways"]["gw-1"]
    assert (gw["status"], gw["at_abort"], gw["phase"]) == ("sent_back", "pending", "health_window")
    assert gw["reason"] == "sent back to defect-cnn 1.0 (rollback offered); was pending · health_window"
    assert yard.publisher.published[-1].slots["main"].manifest.version == "1.0"

    view = rollout_context(detail)
    assert view["failure"]["cls"] == "na"
    assert "aborted" in view["failure"]["note"]
    [(_, _, cells)] = view["current"]
    assert cells["max_error_rate"]["text"].startswith("0.0%")  # the measurement stays shown
    assert [name for name, c in cells.items() if c["cls"] == "ok"] == []

    progress = yard.listed(rollout)["progress"]
    assert (progress["sent_back"], progress["never_left"], progress["left_as_is"]) == (1, 0, 0)
    assert progress["outcome"] == "1 sent back, 0 never left their version"


def test_rollout_every_gateway_refused_lists_its_reason_and_that_none_was_sent_back(
    yard: Yard, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault: a rollout aborted because every gateway refused the version (untrusted key) was listed
    as "sent back to their previous version". Promise: the gateway never left its version, and the
    list (API and factoryctl) says why the rollout aborted and that none was sent back."""
    rollout = yard.create()["id"]
    yard.tick()
    yard.report("gw-1", "1.0", yard.revision("gw-1"), phase="failed", error="signature: untrusted key k1")
    yard.tick()

    listed = yard.listed(rollout)
    assert listed["state"] == "aborted"
    assert listed["reason"] == "wave 1: 1/1 gateway(s) failed (gw-1 failed: signature: untrusted key k1)"
    assert (listed["progress"]["sent_back"], listed["progress"]["never_left"]) == (0, 1)
    gw = yard.get(rollout)["gateways"]["gw-1"]
    assert (gw["status"], gw["reason"]) == ("never_left", "never left 1.0: signature: untrusted key k1")

    assert yard.ctl("rollouts", "list") == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split()[5:7] == ["PROGRESS", "REASON"]
    assert "1/1 started; 0 sent back, 1 never left their version" in row
    # Cut to keep the table readable, after the first failure's cause.
    assert "wave 1: 1/1 gateway(s) failed (gw-1 failed: signature: untruste…  " in row


def test_gateway_without_a_previous_version_is_left_as_is(yard: Yard) -> None:
    """Promise: a gateway that reported no version before its wave is left as is, and says so."""
    yard.birth("gw-2", loaded("defect-cnn", "main", "defect"))
    rollout = yard.create(target={"gateways": ["gw-2"]})["id"]
    yard.tick()
    yard.act(rollout, "abort")
    gw = yard.get(rollout)["gateways"]["gw-2"]
    assert (gw["status"], gw["at_abort"]) == ("left_as_is", "pending")
    assert gw["reason"] == "left as is: no previous version reported; was pending"
    assert yard.listed(rollout)["progress"]["outcome"] == (
        "0 sent back, 0 never left their version, 1 left as is"
    )


def test_version_not_above_the_slots_is_refused_whatever_the_model(yard: Yard) -> None:
    """Fault: defect-cnn 1.1 was accepted for a slot running scratch-net 2.0; the gateway then
    refused it (anti-rollback). Promise: 422 naming the gateway, what it runs and that versions
    must rise per slot; a reported state outranks the birth, and gateways without either pass."""
    yard.birth("gw-2", loaded("scratch-net", "main", "defect", "2.0"))
    yard.birth("gw-3", loaded("scratch-net", "main", "defect", "2.0"))
    yard.report("gw-3", "1.0", 0)  # since its birth, gw-3 went back to defect-cnn 1.0
    yard.birth("gw-4")  # no models told
    refused = yard.post(slot="main", target={"gateways": ["gw-1", "gw-2", "gw-3"]})
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert detail.startswith(
        "defect-cnn 1.1 is not newer than what slot 'main' runs: gw-2 runs scratch-net 2.0."
    )
    assert "only rising versions per slot (anti-rollback)" in detail
    assert "factoryctl rollouts abort" in detail
    assert "gw-3" not in detail
    assert yard.create(slot="main", target={"gateways": ["gw-1", "gw-3", "gw-4"]})["state"] == "running"


def test_gateway_already_running_the_version_is_named_in_a_notice(yard: Yard) -> None:
    """Fault: a rollout of the version a gateway runs gave no sign of it. Promise: it is created,
    and its log (in the response) names the gateways that already run it."""
    yard.birth("gw-2", loaded("defect-cnn", "main", "defect"))
    yard.report("gw-2", "1.1", 0)
    created = yard.create(target={"gateways": ["gw-1", "gw-2"]})
    notices = [e["message"] for e in created["events"] if e["kind"] == "notice"]
    assert notices == ["gw-2 already runs defect-cnn 1.1"]
    yard.act(created["id"], "abort")
    lone = yard.create(target={"gateways": ["gw-2"]})
    assert [e["message"] for e in lone["events"] if e["kind"] == "notice"] == [
        "gw-2 already runs defect-cnn 1.1"
    ]
    refused = yard.post(target={"gateways": ["gw-1", "gw-2"]}, version="1.0")
    assert refused.status_code == 422  # 1.0 is below what gw-2 runs
    assert "gw-2 runs defect-cnn 1.1" in refused.json()["detail"]
