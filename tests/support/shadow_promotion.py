"""The drift-to-teach scenario's last steps: the engineer signs and pushes the taught candidate, it
shadows the serving model on the line, the operator labels the frames where they disagree, and a
rollout gated on that evidence promotes it (tests/e2e/test_drift_to_teach.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from cloud.factoryctl.push import push
from cloud.tasks import ROLLOUT_TICK_TASK
from protocol.captures import LABEL_GOOD
from protocol.manifest import ModelManifest, load_manifest
from protocol.signing import generate_private_key, public_key_pem, sign_manifest
from tests.support.drift_teach import TeachCloud
from tests.support.tokens import bearer
from tests.support.waiting import wait_for

SHADOWED = 100  # frames the candidate must be compared on (the gate's min_frames)
LABELLED = 20  # disagreements the operator labels at least (the gate's min_labelled)
# Beside a champion that flags every good part of the new look the candidate's flag rate is
# bound to differ: the gate that judges it is who was right where they disagree.
GATES = {"min_frames": SHADOWED, "max_flag_rate_shift": None, "min_labelled_accuracy": 0.9,
         "min_labelled": LABELLED, "max_p95_ratio": 3.0}  # fmt: skip


def every(seconds: float, check: Callable[[], bool]) -> Callable[[], bool]:
    """``check`` asked at most every ``seconds``: each asks the API (or queues a task)."""

    def paced() -> bool:
        if check():
            return True
        time.sleep(seconds)
        return False

    return paced


class Engineer:
    """A signing key the gateway trusts, and the push of a release with it."""

    def __init__(self, folder: Path) -> None:
        self.key = generate_private_key()
        self.pem = folder / "engineer.pub.pem"
        self.pem.write_bytes(public_key_pem(self.key.public_key()))

    def push(self, cloud: TeachCloud, manifest_path: Path) -> ModelManifest:
        manifest = load_manifest(manifest_path)
        with httpx.Client(base_url=cloud.url, headers=bearer(cloud.tokens["admin"]), timeout=120) as http:
            push(http, manifest_path.parent / manifest.artifact, manifest, sign_manifest(manifest, self.key))
        return manifest


def shadow_until_labelled(cloud: TeachCloud, gateway: str, candidate: ModelManifest) -> dict[str, Any]:
    """Start the candidate as the challenger, wait for SHADOWED frames compared and the captures of
    their disagreements, label those frames good (the line runs good parts), return the status row."""
    target = {"gateways": [gateway]}
    body = {"model_name": candidate.name, "version": candidate.version, "slot": "defect", "target": target}
    started = cloud.call("POST", "/shadow", 200, role="admin", json=body)
    assert started["published"], started

    def row() -> dict[str, Any] | None:
        rows = cloud.call("GET", "/shadow", params={"version": candidate.version})
        return rows[0] if rows and rows[0]["compared"] >= SHADOWED else None

    wait_for(every(1, lambda: row() is not None), 300, f"the candidate compared on {SHADOWED} frames")
    wait_for(every(1, lambda: _complete(cloud, row()) >= LABELLED), 240, f"{LABELLED} disagreements uploaded")
    found = row()
    assert found is not None
    for capture in found["disagreement_captures"]:
        answer = httpx.get(f"{cloud.url}/api/v1/datasets/{capture}", params={"files_limit": 500},
                           headers=bearer(cloud.tokens["viewer"]))  # fmt: skip
        dataset = answer.json() if answer.status_code == 200 else {"status": "not registered"}
        if dataset["status"] == "complete" and dataset["files"]:
            labels = {f["name"]: LABEL_GOOD for f in dataset["files"]}
            cloud.call("PUT", f"/datasets/{capture}/labels", json={"labels": labels})
    return found


def _complete(cloud: TeachCloud, row: dict[str, Any] | None) -> int:
    """Frames of the row's disagreement captures the cloud has registered."""
    if row is None:
        return 0
    frames = 0
    for capture in row["disagreement_captures"]:
        # The gateway names its capture before it registers it: unknown until the upload starts.
        answer = httpx.get(f"{cloud.url}/api/v1/captures/{capture}", headers=bearer(cloud.tokens["viewer"]))
        if answer.status_code == 404:
            continue
        assert answer.status_code == 200, answer.text
        dataset = answer.json()
        frames += int(dataset["frames"]) if dataset["status"] == "complete" else 0
    return frames


def promote(cloud: TeachCloud, gateway: str, candidate: ModelManifest) -> dict[str, Any]:
    """A rollout gated on the shadow evidence, ticked as Celery beat would until it ends."""
    body = {"model_name": candidate.name, "version": candidate.version, "slot": "defect",
            "target": {"gateways": [gateway]}, "waves": "100%", "bake_s": 0, "gates": GATES}  # fmt: skip
    rollout = cloud.call("POST", "/rollouts", 201, role="admin", json=body)

    def ended() -> bool:
        cloud.send(ROLLOUT_TICK_TASK)
        return cloud.call("GET", f"/rollouts/{rollout['id']}")["state"] in ("completed", "aborted")

    wait_for(every(1, ended), 240, "the promotion rollout to end")
    done: dict[str, Any] = cloud.call("GET", f"/rollouts/{rollout['id']}")
    done["created_events"] = rollout["events"]
    return done


def p95(latencies: list[float]) -> float | None:
    return round(float(np.percentile(latencies, 95)), 1) if latencies else None
