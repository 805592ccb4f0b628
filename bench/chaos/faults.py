"""Each fault: a fresh plant, the fault injected ``reps`` times at random moments while the line
runs, then everything drained and counted (:class:`Row`). Recovery is the time from the end of a
fault (the process back) until a result the agent made after the fault began is stored."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

from bench.chaos.plant import Plant, Row

log = logging.getLogger(__name__)


def _between(rng: random.Random) -> float:
    """A random moment: the line runs at 30 fps, so a kill lands mid-inference, mid-batch or
    mid-commit, never only at quiet points."""
    return rng.uniform(0.3, 1.8)


def _repeat(
    folder: Path, row: Row, rng: random.Random, inject: Callable[[Plant, int], int], ingest_workers: int = 1
) -> Row:
    """A fresh plant; ``row.reps`` times: a random wait, then ``inject`` (which returns the last
    seq the agent had made when the fault began, once the faulty part is back), then the wait for
    a result made after it. Then drained and counted."""
    plant = Plant(folder, ingest_workers=ingest_workers)
    try:
        plant.start()
        plant.wait_stored_beyond(0)
        for n in range(row.reps):
            time.sleep(_between(rng))
            before = inject(plant, n)
            if row.lost < 0:
                return row
            row.recovery_s.append(plant.wait_stored_beyond(before))
        plant.drain_and_tally(row)
        log.info("%s: %s", row.fault, row)
        return row
    finally:
        plant.close()


def agent_sigkill(folder: Path, reps: int, rng: random.Random) -> Row:
    """kill -9 of the agent, then ``PRAGMA integrity_check`` of its outbox, then a restart."""
    row = Row("agent SIGKILL (+ outbox integrity_check)", reps)

    def inject(plant: Plant, _n: int) -> int:
        plant.agent.kill()
        before = plant.last_assigned()
        integrity = plant.outbox_integrity()
        if integrity != "ok":
            row.note = f"outbox integrity_check: {integrity}"
            row.lost = -1  # a damaged outbox fails the row whatever the counts say
        plant.agent.start()
        return before

    return _repeat(folder, row, rng, inject)


def ingest_sigkill(folder: Path, reps: int, rng: random.Random) -> Row:
    """kill -9 of one of two ingest workers sharing the subscription, mid-drain; restarted."""

    def inject(plant: Plant, n: int) -> int:
        victim = plant.ingests[n % 2]
        victim.kill()
        before = plant.last_assigned()
        time.sleep(0.5)
        victim.start()
        return before

    return _repeat(folder, Row("ingest SIGKILL mid-drain (1 of 2 workers)", reps), rng, inject, 2)


def broker_sigkill(folder: Path, reps: int, rng: random.Random) -> Row:
    """kill -9 of Mosquitto (QoS 1 messages it acknowledged but had not saved die with it)."""

    def inject(plant: Plant, _n: int) -> int:
        plant.broker.kill()
        before = plant.last_assigned()
        time.sleep(1.0)
        plant.broker.start()
        return before

    return _repeat(folder, Row("broker SIGKILL + restart", reps), rng, inject)


def postgres_immediate_restart(folder: Path, reps: int, rng: random.Random) -> Row:
    """``pg_ctl restart -m immediate`` mid-stream: open transactions die, the server recovers."""

    def inject(plant: Plant, _n: int) -> int:
        before = plant.last_assigned()
        plant.postgres.restart_immediate()
        return before

    return _repeat(folder, Row("PostgreSQL restart -m immediate", reps), rng, inject)


Fault = Callable[[Path, int, random.Random], Row]
# name -> (fault, repetitions in the full run, in the short run of `make test`)
FAULTS: dict[str, tuple[Fault, int, int]] = {
    "agent": (agent_sigkill, 100, 4),
    "ingest": (ingest_sigkill, 10, 3),
    "broker": (broker_sigkill, 10, 2),
    "postgres": (postgres_immediate_restart, 10, 2),
}
