"""Fixtures of the rollout tests: the yard with a gateway already running the old version."""

from __future__ import annotations

import pytest

from tests.support.yard import Yard, loaded


@pytest.fixture
def gw1_runs_1_0(yard: Yard) -> None:
    """gw-1 is born with defect-cnn 1.0 in slot 'main' and reports it committed."""
    yard.birth("gw-1", loaded("defect-cnn", "main", "defect"))
    yard.report("gw-1", "1.0", 0)
