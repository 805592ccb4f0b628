"""A rollout says what happened: it completes only once its gateways committed, and its outcome stays
as it was when it ended, whatever the gateways report later."""

from __future__ import annotations

import pytest

from cloud.db import make_engine, make_sessionmaker
from cloud.db.models import Rollout
from tests.support.yard import Yard, loaded

# gw-1 runs defect-cnn 1.0 in slot "main" and has reported it committed.
pytestmark = pytest.mark.usefixtures("gw1_runs_1_0")


def test_gateway_in_its_health_window_is_pending_and_its_rollback_aborts_the_rollout(yard: Yard) -> None:
    """Fault: a gateway counted as installed as soon as it ran the target, during its own health
    window, so a short bake completed the rollout and the gateway then rolled back on its own.
    Promise: installed means committed; a rollout never completes while a gateway may roll back."""
    rollout = yard.create(bake_s=0)["id"]
    yard.tick()  # the wave starts
    yard.report("gw-1", "1.1", yard.revision("gw-1"), phase="health_window")
    for _ in range(3):
        yard.tick()
    during = yard.get(rollout)
    assert during["state"] == "running"
    assert (during["gateways"]["gw-1"]["status"], during["gateways"]["gw-1"]["phase"]) == (
        "pending",
        "health_window",
    )
    assert yard.listed(rollout)["progress"]["installed"] == 0

    # The gateway's health window fails: it goes back to 1.0 by itself.
    yard.report("gw-1", "1.0", yard.revision("gw-1"), phase="rolled_back", error="health: error rate 0.4")
    yard.tick()
    ended = yard.get(rollout)
    assert ended["state"] == "aborted"
    assert ended["gateways"]["gw-1"]["status"] == "rolled_back"
    assert ended["gateways"]["gw-1"]["reason"] == "back on 1.0 by itself: health: error rate 0.4"
    assert ended["gateways"]["gw-1"]["at_abort"] == "failed"


def test_gateway_that_commits_completes_the_rollout(yard: Yard) -> None:
    """Promise: the wait for the commit is not a wait forever: a committed gateway completes it."""
    rollout = yard.create(bake_s=0)["id"]
    yard.tick()
    yard.report("gw-1", "1.1", yard.revision("gw-1"), phase="health_window")
    yard.tick()
    yard.report("gw-1", "1.1", yard.revision("gw-1"), phase="committed")
    yard.tick()  # installed: the bake (0 s) starts
    yard.tick()
    assert yard.get(rollout)["state"] == "completed"


def test_completed_rollout_keeps_its_outcome_when_the_gateway_later_fails_another_update(yard: Yard) -> None:
    """Fault: an ended rollout was judged against the gateways' current reports, so a completed one
    later read "failed · anti-rollback" because of another update. Promise: an ended rollout shows
    each gateway as it stood when the rollout ended, in the detail and in the list."""
    rollout = yard.create(bake_s=0)["id"]
    yard.tick()
    yard.report("gw-1", "1.1", yard.revision("gw-1"), phase="committed")
    yard.tick()
    yard.tick()
    assert yard.get(rollout)["state"] == "completed"

    # Later another update of the slot is refused by the gateway.
    yard.report("gw-1", "1.1", yard.revision("gw-1") + 1, phase="failed", error="anti-rollback: 1.0 < 1.1")
    gw = yard.get(rollout)["gateways"]["gw-1"]
    assert (gw["status"], gw["reason"], gw["phase"], gw["active_version"]) == (
        "installed",
        None,
        "committed",
        "1.1",
    )
    assert [g["gate"] for g in gw["gates"]][0] == "min_inferences"
    assert gw["gates"][0]["measured"] == 100
    assert yard.listed(rollout)["progress"] == {
        "planned": 1, "started": 1, "installed": 1, "bad": 0,
        "sent_back": None, "never_left": None, "left_as_is": None, "outcome": None,
    }  # fmt: skip


def test_aborted_rollout_keeps_the_failure_it_aborted_on(yard: Yard) -> None:
    """Promise: an aborted rollout keeps showing why each gateway failed, even after the gateway
    recovers and reports a healthy state."""
    rollout = yard.create(bake_s=0)["id"]
    yard.tick()
    yard.report("gw-1", "1.0", yard.revision("gw-1"), phase="failed", error="smoke test of 1.1 failed")
    yard.tick()
    assert yard.get(rollout)["state"] == "aborted"
    yard.report("gw-1", "1.0", yard.revision("gw-1") + 5, phase="committed")
    gw = yard.get(rollout)["gateways"]["gw-1"]
    assert (gw["status"], gw["reason"], gw["phase"], gw["at_abort"]) == (
        "never_left",
        "never left 1.0: smoke test of 1.1 failed",
        "failed",
        "failed",
    )
    progress = yard.listed(rollout)["progress"]
    assert (progress["installed"], progress["bad"], progress["sent_back"], progress["never_left"]) == (
        None,
        1,
        0,
        1,
    )


def test_rollouts_ended_before_outcomes_were_kept_are_not_judged_on_todays_reports(yard: Yard) -> None:
    """Promise: a rollout that ended without a frozen outcome shows what its end says (completed:
    installed; aborted: the abort reason), never today's state of the gateway."""
    done = yard.create(bake_s=0)["id"]
    yard.tick()
    yard.report("gw-1", "1.1", yard.revision("gw-1"), phase="committed")
    yard.tick()
    yard.tick()
    yard.birth("gw-2", loaded("defect-cnn", "main", "defect"))
    stopped = yard.create(target={"gateways": ["gw-2"]})["id"]
    yard.tick()
    yard.act(stopped, "abort")
    engine = make_engine(yard.settings.db_url)
    try:
        with make_sessionmaker(engine).begin() as session:  # as stored before outcomes were frozen
            for rollout_id in (done, stopped):
                row = session.get(Rollout, rollout_id)
                assert row is not None
                row.plan = {gw: {k: v for k, v in e.items() if k != "final"} for gw, e in row.plan.items()}
    finally:
        engine.dispose()
    yard.report("gw-1", "1.1", yard.revision("gw-1") + 1, phase="failed", error="anti-rollback")

    old_done = yard.get(done)["gateways"]["gw-1"]
    assert (old_done["status"], old_done["reason"], old_done["active_version"]) == ("installed", None, "1.1")
    old_stopped = yard.get(stopped)["gateways"]["gw-2"]
    assert (old_stopped["status"], old_stopped["reason"]) == ("aborted", "aborted by token:test-admin")
    assert yard.listed(done)["progress"]["installed"] == 1
