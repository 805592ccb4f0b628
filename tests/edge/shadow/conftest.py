from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.runtime import Runner
from tests.support.shadow import ALL_SCRATCH_BIAS, champion_runner, tiny_runner


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def champion(models: Path) -> Runner:
    """Dark frames good, bright ones scratch."""
    return champion_runner(models)


@pytest.fixture(scope="module")
def all_scratch(models: Path) -> Runner:
    """A challenger that calls every frame scratch."""
    return tiny_runner(models, "1.1.0", ALL_SCRATCH_BIAS)
