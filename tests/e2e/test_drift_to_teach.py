"""The whole story of a line that changes its look, on real processes: a gateway agent serving the
bundled PatchCore sees the line go from its usual look to a new belt and light; its drift monitor
confirms the change within the frames docs/drift.md states; the cloud's rule evaluation (on the
Celery worker) opens the drift alert; the operator captures 150 frames of good parts on the line;
a training run queued through the API and carried out by the worker teaches them; the candidate
ranks defects of the new look (on frames of another line nobody captured or used) at AUROC >=
0.95, and its false rejects on the line's later good parts are back near the serving model's on
its old look. Then the engineer signs and pushes the candidate, it shadows the serving model on
the line, the operator labels the frames where they disagree, and a rollout gated on that
evidence promotes it: the gateway serves it, no result lost or doubled.

Runs on Mosquitto + PostgreSQL + Redis; on the embedded demo's broker + SQLite + filesystem queue
up to the capture (what follows depends on the fit, not on the stack). Figures are printed
(pytest -s) and recorded as properties; none is timed.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from cloud.ota.desired_key import public_key_file
from cloud.tasks import ALERTS_TASK
from simulators.camera_line import CameraLineConfig
from simulators.fleet import bundled_manifest
from tests.support.captures import mint_gateway_token
from tests.support.drift_teach import (
    HeldOut,
    TeachCloud,
    drop_phase,
    false_reject_slack,
    phase_of,
    stage_phase,
)
from tests.support.e2e import Stack
from tests.support.shadow_promotion import Engineer, p95, promote, shadow_until_labelled
from tests.support.waiting import wait_for

GATEWAY = "gw-drift"
LINE_NAME = "line-e2e"  # Stack.agent_config's line
SERVING = bundled_manifest("anomaly")  # defect-patchcore 1.1.0, which carries a drift reference
LINE = CameraLineConfig(seed=9101)  # 640x480, 20 % defective: the look the drift reference knows
NEW_LOOK = LINE.unseen_appearance()  # mesh belt, warm light, noisier sensor
HELD_OUT_SEED = 9202  # a line none of the scenario's frames came from
LATER = 5000  # this line's frames from here on were never shown to the agent before the shadow run

# docs/drift.md: a new look is confirmed after 60 frames when it starts at an evaluation boundary
# (window 100, an evaluation every 20, confirmed at the 3rd in a row); a change between two
# evaluations adds up to 19: "confirms drift after 60-79 frames".
FRAMES_TO_CONFIRM = 79
# The usual look first: 100 frames fill the window, then an evaluation every 20 (11 in 300).
UNCHANGED_FRAMES = 300
# docs/drift.md, bench/drift_figures.py: no alarm in 10,500 frames of unchanged lines of this
# release. Measuring that live would take ~6 min of inference; the test measures its own
# unchanged stretch and prints that figure beside it.
DOCS_UNCHANGED_FRAMES = 10_500
CAPTURED = 150
LINE_FPS = 8
AUROC_AFTER = 0.95


def _seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def _agent_config(stack: Stack, cloud: TeachCloud) -> dict[str, Any]:
    token = stack.folder / "api-token"
    token.write_text(mint_gateway_token(cloud.settings.db_url, GATEWAY))
    token.chmod(0o600)
    config = stack.agent_config(GATEWAY, cloud.settings.broker_url)
    config["models"] = [{"slot": "defect", "manifest": str(SERVING)}]
    config["sources"][0]["loop"] = True  # the line keeps running; the folder holds its current look
    config["captures"] = {"enabled": True, "api_url": cloud.url, "token_file": str(token),
                          "retry_min_s": 0.2, "retry_max_s": 1.0}  # fmt: skip
    return config


def _ran(cloud: TeachCloud, at_least: int) -> bool:
    latest = cloud.latest(GATEWAY)
    return latest is not None and int(latest["seq"]) >= at_least


def _shows(cloud: TeachCloud, phase: int) -> bool:
    latest = cloud.latest(GATEWAY)
    return latest is not None and phase_of(str(latest["frame"])) == phase


def _confirmed(cloud: TeachCloud) -> bool:
    slots = cloud.call("GET", f"/gateways/{GATEWAY}/drift")
    return any(s["slot"] == "defect" and s["state"] == "confirmed" for s in slots)


def _drift_alert(cloud: TeachCloud) -> dict[str, Any] | None:
    alerts = cloud.call("GET", "/alerts", params={"line": LINE_NAME})
    found = [a for a in alerts if a["kind"] == "model_drift" and a["gateway_id"] == GATEWAY]
    return found[0] if found else None


def _since(cloud: TeachCloud, seq: int) -> list[dict[str, Any]]:
    """The gateway's results numbered after ``seq``, in order."""
    return sorted((r for r in cloud.results(GATEWAY) if int(r["seq"]) > seq), key=lambda r: int(r["seq"]))


def _run(cloud: TeachCloud, run_id: int) -> dict[str, Any]:
    run: dict[str, Any] = cloud.call("GET", f"/training-runs/{run_id}")
    return run


# A hang guard, not a speed bound: the fit alone takes minutes on a loaded 2-core machine.
@pytest.mark.timeout(1500)
def test_a_new_look_is_confirmed_alerted_captured_and_taught_back_to_baseline(
    stack: Stack, teach_cloud_on: TeachCloud, record_property: Any
) -> None:
    cloud = teach_cloud_on
    engineer = Engineer(stack.folder)
    figures: dict[str, Any] = {"stack": cloud.backend.name}
    cloud.call("POST", "/alert-rules", 201, role="admin",
               json={"line": LINE_NAME, "kind": "model_drift", "threshold": 2})  # fmt: skip
    stage_phase(stack.folder, 1, LINE, 0, 140).show(stack.frames_dir)
    with stack.agent(_agent_config(stack, cloud)) as agent:
        # The usual look; the next looks are rendered aside meanwhile.
        new_look = stage_phase(stack.folder, 2, NEW_LOOK, 0, 120)  # the same parts, another look
        wait_for(lambda: _ran(cloud, UNCHANGED_FRAMES), 180, f"{UNCHANGED_FRAMES} frames of the usual look")

        # The look changes.
        drop_phase(stack.frames_dir, 1)
        new_look.show(stack.frames_dir)
        # 600: the 150 captured, the frames run before the order reaches the gateway, and the frames
        # the recorder skips when its PNG writing falls behind (a loaded machine skips more than half).
        good_parts = stage_phase(stack.folder, 3, replace(NEW_LOOK, defect_rate=0.0), 1000, 600)
        wait_for(lambda: _confirmed(cloud), 180, "the cloud to hear the drift confirmed")
        cloud.send(ALERTS_TASK)  # the beat's evaluation, on the worker
        wait_for(lambda: _drift_alert(cloud) is not None, 60, "the model_drift alert to open")
        alert = _drift_alert(cloud)
        assert alert is not None

        # The operator puts good parts on the line and captures them.
        drop_phase(stack.frames_dir, 2)
        good_parts.show(stack.frames_dir)
        wait_for(lambda: _shows(cloud, 3), 60, "the line to run good parts of the new look")
        [capture] = cloud.call("POST", "/captures", 201, json={
            "gateway": GATEWAY, "slot": "defect", "frames": CAPTURED, "label": "good",
            "note": "good parts after the belt and lamp change"})  # fmt: skip
        capture_id = str(capture["id"])
        wait_for(lambda: cloud.call("GET", f"/captures/{capture_id}")["status"] == "complete", 240,
                 "the capture to be uploaded and registered")  # fmt: skip
        assert agent.captures is not None
    dataset = cloud.call("GET", f"/datasets/{capture_id}", params={"files_limit": 500})
    results = cloud.results(GATEWAY)
    events = cloud.drift_events(GATEWAY)

    # Drift: confirmed within the stated frames of the change, nothing raised before it.
    first_new = min(int(r["seq"]) for r in results if phase_of(str(r["frame"])) == 2)
    confirmations = sorted(
        int(e["details"]["frames"]) for e in events if e["details"]["transition"] == "confirmed"
    )
    assert confirmations, f"no confirmed model_drift event among {[e['message'] for e in events]}"
    frames_to_detect = confirmations[0] - first_new + 1
    false_alarms = [e for e in events if int(e["details"]["frames"]) < first_new]
    unchanged = first_new - 1
    evaluations = (unchanged - 100) // 20 + 1
    figures |= {
        "frames_to_detect": frames_to_detect,
        "unchanged_frames": unchanged,
        "unchanged_evaluations": evaluations,
        "false_alarms": len(false_alarms),
        # 95 % upper bound of a Poisson rate with no event seen: -ln(0.05) = 3.0 events.
        "false_alarms_per_10k_upper95": round(3.0 / unchanged * 10_000, 1),
        "docs_false_alarms_per_10k_upper95": round(3.0 / DOCS_UNCHANGED_FRAMES * 10_000, 1),
        "alert": alert["message"],
    }
    assert 1 <= frames_to_detect <= FRAMES_TO_CONFIRM, figures
    assert false_alarms == [], [e["message"] for e in false_alarms]
    assert "light/colour moved" in alert["message"] or "focus moved" in alert["message"], alert["message"]

    # The capture: 150 distinct frames of good parts of the new look, none held out later.
    files = dataset["files"]
    assert (dataset["status"], dataset["frames"], dataset["label"]) == ("complete", CAPTURED, "good")
    assert {phase_of(f["frame"]) for f in files} == {3}, "the capture holds frames of another phase"
    assert len({f["frame"] for f in files}) == CAPTURED, "the capture holds a frame twice (the folder looped)"
    assert all(good_parts.truth[f["frame"]] == "good" for f in files)
    figures["capture_upload_s"] = round(_seconds(dataset["registered_at"], dataset["ended_at"]), 2)
    figures["capture_span_s"] = round(_seconds(dataset["ended_at"], dataset["started_at"]), 2)
    if cloud.backend.name != "production":
        # The fit and its figures do not depend on the stack, which only carries them: on the
        # demo's worker a run is taught in tests/browser/test_console_teach_browser.py, a challenger
        # shadowed and promoted in tests/e2e/test_shadow_promotion.py.
        print("\ndrift-to-capture figures:", figures)
        return

    # Teach: queued through the API, carried out by the worker.
    run = cloud.call("POST", "/training-runs", 201, json={"dataset_id": capture_id})
    assert run["status"] == "queued", run
    wait_for(lambda: _run(cloud, run["id"])["status"] in ("succeeded", "failed"), 900, "the training run")
    run = _run(cloud, run["id"])
    assert run["status"] == "succeeded", (run["error"], run["log_tail"])
    figures["fit_s"] = round(_seconds(run["finished_at"], run["started_at"]), 1)
    cloud.download(run["id"], list(run["artifacts"]), stack.folder / "candidate")
    [candidate] = (stack.folder / "candidate").glob("*.manifest.json")

    # Defects ranked before and after, on frames of a line seed nothing above came from.
    started = time.perf_counter()
    new_before, new_after = HeldOut(replace(NEW_LOOK, seed=HELD_OUT_SEED, defect_rate=0.5), 160).judge(
        SERVING, candidate
    )
    # False rejects on this line's own later frames (no phase showed them, no capture holds them):
    # the threshold is set on this line's belt and sensor. On another line of the same look its
    # false rejects ranged 0-9 % with which 150 frames were captured (printed, not bounded).
    good_before, good_after = HeldOut(replace(NEW_LOOK, defect_rate=0.0), 300, LATER).judge(
        SERVING, candidate
    )
    [other_line] = HeldOut(replace(NEW_LOOK, seed=HELD_OUT_SEED, defect_rate=0.0), 150, 1000).judge(candidate)
    [baseline] = HeldOut(replace(LINE, defect_rate=0.0), 100, LATER).judge(SERVING)
    # Back to the usual look's false rejects, give or take what a threshold set on n good frames
    # and checked on the frames above lands on 999 times in 1,000 (n = 150: every captured frame,
    # scored out of fold, a bound of about 1 + 6 % against 1 + 23 % were 30 frames held out).
    n = int(run["figures"]["threshold_frames"])
    checked = len(good_after.flagged)
    bound = baseline.false_reject_rate + false_reject_slack(n, float(run["parameters"]["frr"]), checked)
    figures |= {
        "auroc_before": round(new_before.auroc, 4),
        "auroc_after": round(new_after.auroc, 4),
        "frr_baseline_usual_look": round(baseline.false_reject_rate, 4),
        "frr_before_new_look": round(good_before.false_reject_rate, 4),
        "frr_after_new_look": round(good_after.false_reject_rate, 4),
        "frr_after_other_line": round(other_line.false_reject_rate, 4),
        "frr_bound": round(bound, 4),
        "threshold_frames": n,
        "threshold_folds": run["figures"]["threshold_folds"],
        "held_out_s": round(time.perf_counter() - started, 1),
    }
    for name, value in figures.items():
        record_property(name, value)
    print("\ndrift-to-teach figures:", figures)
    assert new_after.auroc >= AUROC_AFTER, figures
    assert good_before.false_reject_rate > bound, f"the new look did not raise false rejects: {figures}"
    assert good_after.false_reject_rate <= bound, figures

    # Shadow, then promotion gated on it: the engineer signs and pushes the candidate; it runs
    # beside the serving model on the line (good parts of the new look, unseen), the operator labels
    # the frames where they disagree, and a rollout gated on that evidence swaps it in.
    released = engineer.push(cloud, candidate)
    drop_phase(stack.frames_dir, 3)  # the line runs on: good parts no capture or fit has seen
    stage_phase(stack.folder, 4, replace(NEW_LOOK, defect_rate=0.0), LATER + 1000, 300).show(stack.frames_dir)
    config = _agent_config(stack, cloud)
    config["sources"][0]["rate_fps"] = LINE_FPS  # a camera's pace: the serving model is never behind
    config["ota"] = {"enabled": True, "trusted_keys": [str(engineer.pem)], "report_interval_s": 1,
                     "desired_keys": [str(public_key_file(cloud.settings))]}  # fmt: skip
    config["shadow"] = {"window_frames": 40}
    with stack.agent(config) as agent:
        restarted_at = int(cloud.latest(GATEWAY)["seq"])  # type: ignore[index]
        wait_for(lambda: _ran(cloud, restarted_at + 40), 120, "the serving model's results after the restart")
        alone = [float(r["latency_ms"]) for r in _since(cloud, restarted_at)]
        shadow_from = int(cloud.latest(GATEWAY)["seq"])  # type: ignore[index]
        row = shadow_until_labelled(cloud, GATEWAY, released)
        beside = [float(r["latency_ms"]) for r in _since(cloud, shadow_from)]
        rollout = promote(cloud, GATEWAY, released)
        assert rollout["state"] == "completed", rollout
        wait_for(lambda: agent.runners[0].manifest.version == released.version, 60, "the candidate promoted")
        promoted_at = int(cloud.latest(GATEWAY)["seq"])  # type: ignore[index]
        wait_for(lambda: _ran(cloud, promoted_at + 60), 120, "the promoted model's results")
    after = _since(cloud, promoted_at)
    seqs = sorted(int(r["seq"]) for r in cloud.results(GATEWAY))
    [gated] = [e for e in rollout["created_events"] if e["kind"] == "shadow_gates"]
    accuracy = {g["gate"]: g for g in gated["details"]["gateways"][GATEWAY]}["min_labelled_accuracy"]
    served = {
        "shadow_compared": row["compared"],
        "shadow_skipped": row["skipped"],
        "shadow_agreement": round(row["agreement"], 3),
        "shadow_flag_rates": (row["champion_flag_rate"], row["challenger_flag_rate"]),
        "labelled_accuracy": round(accuracy["measured"], 3),
        "labelled_note": accuracy["note"],
        "champion_p95_ms_alone": p95(alone),
        "champion_p95_ms_beside_challenger": p95(beside),
        "promoted_false_rejects": round(sum(bool(r["is_defect"]) for r in after) / len(after), 4),
        "promoted_checked": len(after),
    }
    for name, value in served.items():
        record_property(name, value)
    print("\nshadow-and-promotion figures:", served)
    assert {r["model_version"] for r in after} == {released.version}
    assert seqs == list(range(1, len(seqs) + 1)), "a result was lost or doubled"
    slack = false_reject_slack(n, float(run["parameters"]["frr"]), len(after))
    assert served["promoted_false_rejects"] <= baseline.false_reject_rate + slack, served
