"""Fixtures of the training-run tests: settings with their own artifact folder, the stores a run
reads and writes, and a signing key the cloud may hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.config import CloudSettings
from cloud.training.teach import Stores
from tests.support.teach import signing_key


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> CloudSettings:
    """This test's database and artifact folder; no signing key."""
    return CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    """An Ed25519 private key PEM the cloud may be configured with."""
    return signing_key(tmp_path)


@pytest.fixture
def stores(settings: CloudSettings) -> Stores:
    """The capture, training and model stores of ``settings``."""
    return Stores.of(settings)
