"""Recording training runs (cloud/training/runs.py): a dataset that cannot teach a model is a failed
run saying why, a candidate takes the next patch version of its model and reserves it, and one
dataset has one run at a time."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from cloud.auth.service import Principal, Role
from cloud.config import CloudSettings
from cloud.datasets.service import apply_labels, get_dataset
from cloud.training import runs
from cloud.training.schemas import TeachParameters
from cloud.training.teach import Stores, teach
from protocol.messages import ModelRef
from tests.support.releases import make_release, register
from tests.support.teach import simulated_dataset

WHO = Principal("user:otto", Role.operator, user_id=1)
PARAMS = TeachParameters()


def request(sessions: sessionmaker[Session], dataset_id: str, **params: object) -> runs.TrainingRun:
    with sessions.begin() as session:
        run = runs.request_run(session, dataset_id, TeachParameters.model_validate(params), WHO)
        session.expunge(run)
    return run


def test_an_unknown_dataset_is_a_failed_run_naming_it(sessions: sessionmaker[Session]) -> None:
    run = request(sessions, "cap-ffffffffffff")
    assert (run.status, run.error) == ("failed", "no capture or dataset cap-ffffffffffff")
    assert run.finished_at is not None
    assert (run.model_name, run.model_version, run.requested_by) == (None, None, "user:otto")


def test_a_dataset_without_good_frames_is_a_failed_run_saying_what_to_do(
    sessions: sessionmaker[Session], stores: Stores
) -> None:
    simulated_dataset(sessions, stores.captures, "cap-00000000000a", good=0, defects=4)
    run = request(sessions, "cap-00000000000a")
    assert run.status == "failed"
    assert run.error == (
        "only 0 good frame(s) in train/good; 'factory-models train defect' needs at least 13: "
        "label more frames good, or capture more"
    )
    simulated_dataset(sessions, stores.captures, "cap-00000000000b", good=14, label=None)
    unlabelled = request(sessions, "cap-00000000000b")
    assert unlabelled.error is not None
    assert unlabelled.error.startswith("only 0 good frame(s)")


def test_a_dataset_with_no_frames_is_a_failed_run(sessions: sessionmaker[Session], stores: Stores) -> None:
    simulated_dataset(sessions, stores.captures, "cap-00000000000c", good=0)
    run = request(sessions, "cap-00000000000c")
    assert (run.status, run.error) == ("failed", "dataset cap-00000000000c holds no frames to teach from")


def test_a_candidate_takes_the_next_patch_version_and_reserves_it(
    sessions: sessionmaker[Session], stores: Stores, settings: CloudSettings, tmp_path: Path
) -> None:
    register(
        settings, make_release(tmp_path / "r", "1.1.0", Ed25519PrivateKey.generate(), name="defect-patchcore")
    )
    served = ModelRef(name="defect-cnn", version="1.0.0", sha256="ab" * 32)
    simulated_dataset(sessions, stores.captures, "cap-00000000000d", good=14, model=served)
    simulated_dataset(sessions, stores.captures, "cap-00000000000e", good=14)
    first = request(sessions, "cap-00000000000d")
    # defect-cnn is not an anomaly model: its slot gets the trainer's own name, not a CNN's.
    assert (first.status, first.model_name, first.model_version) == ("queued", "defect-patchcore", "1.1.1")
    second = request(sessions, "cap-00000000000e")
    assert second.model_version == "1.1.2"
    simulated_dataset(sessions, stores.captures, "cap-000000000011", good=14)
    named = request(sessions, "cap-000000000011", model_name="line-2-normal")
    assert (named.model_name, named.model_version) == ("line-2-normal", "1.0.0")


def test_a_candidate_is_above_the_version_its_gateway_serves_though_the_registry_lacks_it(
    sessions: sessionmaker[Session], stores: Stores
) -> None:
    # A bundled model never went through the registry: its candidate must still be above it, or
    # no gateway serving it would install the candidate (versions only rise per slot).
    served = ModelRef(name="defect-patchcore", version="1.1.0", sha256="ab" * 32)
    simulated_dataset(sessions, stores.captures, "cap-000000000012", good=14, model=served)
    run = request(sessions, "cap-000000000012")
    assert (run.model_name, run.model_version) == ("defect-patchcore", "1.1.1")


def test_one_dataset_has_one_run_at_a_time(sessions: sessionmaker[Session], stores: Stores) -> None:
    simulated_dataset(sessions, stores.captures, "cap-00000000000f", good=14)
    first = request(sessions, "cap-00000000000f")
    with pytest.raises(runs.RunError, match=f"training run {first.id} of dataset cap-00000000000f is still"):
        request(sessions, "cap-00000000000f")


def test_a_run_whose_dataset_lost_its_good_frames_fails_before_any_fit(
    sessions: sessionmaker[Session], stores: Stores, settings: CloudSettings
) -> None:
    simulated_dataset(sessions, stores.captures, "cap-000000000010", good=14)
    run = request(sessions, "cap-000000000010")
    with sessions.begin() as session:
        dataset = get_dataset(session, "cap-000000000010")
        apply_labels(session, dataset, {f"{n:06d}.png": "skip" for n in range(1, 5)}, WHO)
    assert teach(sessions, settings, stores, run.id) == "failed"
    with sessions() as session:
        failed = runs.get_run(session, run.id)
        assert failed.error is not None
        assert failed.error.startswith("only 10 good frame(s) in train/good")
        assert failed.started_at is not None
        assert failed.code_version is not None
        assert failed.artifacts is None
    assert teach(sessions, settings, stores, run.id) == "failed"  # taken once only
