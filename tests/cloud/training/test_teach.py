"""Teaching a dataset (cloud/training/teach.py) with a real fit: the trainer runs as a process on
the dataset's frames, and the run records what reproduces it, what it measured and what it made.
With the cloud's signing key the candidate is signed and registered, its version naming the run;
without one it awaits a signature, its files kept for an engineer to sign and push."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.auth.service import Principal, Role
from cloud.config import CloudSettings
from cloud.db.models import AuditEntry, GatewayReported, ModelVersion
from cloud.registry.service import create_version, put_chunk
from cloud.training import runs
from cloud.training.schemas import TeachParameters
from cloud.training.teach import Stores, teach
from protocol.manifest import ModelManifest
from protocol.messages import ModelRef, utcnow
from protocol.signing import load_private_key, public_key_pem, sign_manifest, trust_store_from
from tests.support.releases import make_release, register
from tests.support.teach import FAST, simulated_dataset

WHO = Principal("user:otto", Role.operator, user_id=1)
PREVIOUS = "1.1.0"


def queued(sessions: sessionmaker[Session], dataset_id: str) -> int:
    with sessions.begin() as session:
        run = runs.request_run(session, dataset_id, TeachParameters.model_validate(FAST), WHO)
        assert run.status == "queued", run.error
        return run.id


def stored(stores: Stores, entry: dict[str, object]) -> bytes:
    sha, size = str(entry["sha256"]), int(str(entry["size_bytes"]))
    return b"".join(stores.training.read(sha, 0, size - 1))


def test_with_a_key_the_candidate_is_signed_registered_and_traced_to_its_run(
    sessions: sessionmaker[Session], settings: CloudSettings, stores: Stores, key_path: Path, tmp_path: Path
) -> None:
    signing = settings.model_copy(update={"training_signing_key": str(key_path)})
    key = load_private_key(key_path)
    register(settings, make_release(tmp_path / "old", PREVIOUS, key, name="defect-patchcore"))
    serving = ModelRef(name="defect-patchcore", version=PREVIOUS, sha256="ab" * 32)
    kinds = simulated_dataset(
        sessions, stores.captures, "cap-0000000000a1", good=20, defects=4, model=serving
    )
    run_id = queued(sessions, "cap-0000000000a1")

    assert teach(sessions, signing, stores, run_id) == "succeeded"

    with sessions.begin() as session:
        run = runs.get_run(session, run_id)
        assert (run.model_name, run.model_version, run.signed) == ("defect-patchcore", "1.1.1", True)
        assert run.started_at is not None
        assert run.finished_at is not None
        assert run.finished_at >= run.started_at
        assert run.code_version is not None
        assert run.code_version.startswith("factory-edge ")
        assert (run.seed, run.parameters["coreset"], run.parameters["max_images"]) == (0, 50, 20)
        assert run.error is None
        assert run.log_tail is not None
        assert "MODEL_CARD.md" in run.log_tail
        figures = run.figures
        assert figures is not None
        # mvtec_layout: every fifth good frame is held out for test/good once defects are labelled.
        assert figures["frames"]["train/good"] == 16
        assert figures["frames"]["test/good"] == 4
        assert sum(n for f, n in figures["frames"].items() if f.startswith("test/") and f != "test/good") == 4
        assert {f.removeprefix("test/") for f in figures["frames"]} >= set(kinds)
        assert figures["target_false_reject_rate"] == 0.01
        assert figures["threshold"] > 0
        for name in ("image_auroc", "f1", "precision", "recall", "false_reject_rate"):
            assert 0.0 <= figures["held_out"][name] <= 1.0

        version = session.scalar(select(ModelVersion).where(ModelVersion.name == "defect-patchcore",
                                                             ModelVersion.version == "1.1.1"))  # fmt: skip
        assert version is not None
        assert version.sha256 == run.artifact_sha256
        manifest = ModelManifest.model_validate(version.manifest)
        assert manifest.lineage is not None
        assert manifest.lineage.dataset_id == "cap-0000000000a1"
        assert manifest.lineage.seed == 0
        assert manifest.lineage.parent_version == PREVIOUS
        assert manifest.lineage.code_commit == run.code_version[:64]
        pub = tmp_path / "cloud.pub.pem"
        pub.write_bytes(public_key_pem(key.public_key()))
        trust_store_from([pub]).verify(manifest, sign_manifest(manifest, key))
        assert version.signature == sign_manifest(manifest, key).model_dump(mode="json")
        assert version.card is not None
        assert "--dataset cap-0000000000a1" in version.card
        assert runs.run_of_version(session, version) is run
        audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "model.create"))
        assert audit is not None
        assert (audit.actor, audit.details["requested_by"]) == (f"training-run:{run_id}", "user:otto")

        session.add(GatewayReported(gateway_id="gw-a", desired_revision=1, rollout_id=None,
                                    slots={"main": {"active": {"name": "defect-patchcore", "version": "1.1.1"}}},
                                    timestamp=utcnow(), received_at=utcnow()))  # fmt: skip
        session.flush()
        shown = runs.detail(session, run, runs.push_commands(run))
        assert (shown.registered, shown.awaiting_signature, shown.running_on) == (True, False, ["gw-a"])
        assert shown.push_commands == []
        assert shown.dataset is not None
        assert shown.dataset["labels"]["unlabelled"] == 20
    assert timedelta(0) <= run.finished_at - run.created_at


def test_without_a_key_the_candidate_awaits_a_signature_with_its_files_kept(
    sessions: sessionmaker[Session], settings: CloudSettings, stores: Stores, key_path: Path
) -> None:
    simulated_dataset(sessions, stores.captures, "cap-0000000000a2", good=16)
    run_id = queued(sessions, "cap-0000000000a2")

    assert teach(sessions, settings, stores, run_id) == "succeeded"

    with sessions() as session:
        run = runs.get_run(session, run_id)
        assert (run.model_name, run.model_version, run.signed) == ("defect-patchcore", "1.0.0", False)
        assert session.scalars(select(ModelVersion)).all() == []
        shown = runs.detail(session, run, runs.push_commands(run))
        assert (shown.status, shown.awaiting_signature, shown.registered) == ("succeeded", True, False)
        assert shown.push_commands[0] == f"factoryctl runs download {run_id} --out run-{run_id}"
        assert run.figures is not None
        assert run.figures["held_out"] is None
        assert "no frame is labelled with a defect kind" in run.figures["held_out_note"]
        assert run.figures["frames"] == {"train/good": 16}
        files = run.artifacts
        assert files is not None
        stem = "defect-patchcore-1.0.0"
        assert {f"{stem}.onnx", f"{stem}.manifest.json", f"{stem}.calibration.json", "MODEL_CARD.md"} <= set(
            files
        )
        for name, entry in files.items():
            assert hashlib.sha256(stored(stores, entry)).hexdigest() == entry["sha256"], name
        manifest = ModelManifest.model_validate(json.loads(stored(stores, files[f"{stem}.manifest.json"])))
        assert manifest.sha256 == files[f"{stem}.onnx"]["sha256"] == run.artifact_sha256
        assert manifest.lineage is not None
        assert manifest.lineage.dataset_id == "cap-0000000000a2"
        assert manifest.lineage.parent_version is None
        card = stored(stores, files["MODEL_CARD.md"]).decode()
        assert "--dataset cap-0000000000a2" in card
        assert "factory-teach-" not in card

    # An engineer signs the kept files and pushes them: the registry then names the run.
    key = load_private_key(key_path)
    with sessions.begin() as session:
        for name in (manifest.artifact, *manifest.files):
            data = stored(stores, files[name])
            put_chunk(session, stores.models, files[name]["sha256"], len(data), 0, data)
        version, _ = create_version(
            session, settings, manifest, sign_manifest(manifest, key), card, "user:eng"
        )
        assert runs.run_of_version(session, version) is not None
    with sessions() as session:
        again = runs.detail(session, runs.get_run(session, run_id), [])
        assert (again.registered, again.awaiting_signature) == (True, False)
