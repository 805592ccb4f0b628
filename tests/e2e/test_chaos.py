"""The short form of ``make chaos`` (bench/chaos): each fault injected for real, a few times at
random moments, into real processes (agent, ingest workers, Mosquitto, a PostgreSQL cluster of
the test's own). The promise kept in every row: every result the agent committed is stored once."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.chaos.faults import FAULTS
from bench.chaos.report import table


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(name for name, (_f, _full, short) in FAULTS.items() if short))
def test_fault_loses_and_doubles_nothing(name: str, tmp_path: Path) -> None:
    fault, _full, short = FAULTS[name]
    row = fault(tmp_path / name, short, random.Random(f"chaos-{name}"))
    print("\n" + table([row]))
    assert len(row.recovery_s) == short, "every repetition must have hit and recovered"
    assert row.sent > short * 10, f"the line barely moved: {row}"
    assert (row.lost, row.doubled) == (0, 0), f"{row} (logs in {tmp_path / name})"
    assert row.stored == row.sent
