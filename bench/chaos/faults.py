"""Each fault: a fresh plant, the fault injected ``reps`` times at random moments while the line
runs, then everything drained and counted (:class:`Row`). Recovery is the time from the end of a
fault (the process back) until a result the agent made after the fault began is stored."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.chaos.plant import Plant, Row

log = logging.getLogger(__name__)


def _between(rng: random.Random) -> float:
    """A random moment: the line runs at 30 fps, so a kill lands mid-inference, mid-batch or
    mid-commit, never only at quiet points."""
    return rng.uniform(0.3, 1.8)


def _repeat(
    folder: Path, row: Row, rng: random.Random, inject: Callable[[Plant, int], int], **plant: Any
) -> Row:
    """A fresh plant; ``row.reps`` times: a random wait, then ``inject`` (which returns the last
    seq the agent had made when the fault began, once the faulty part is back), then the wait for
    a result made after it. Then drained and counted."""
    line = Plant(folder, **plant)
    try:
        line.start()
        line.wait_stored_beyond(0)
        for n in range(row.reps):
            time.sleep(_between(rng))
            before = inject(line, n)
            if row.lost < 0:
                return row
            row.recovery_s.append(line.wait_stored_beyond(before))
        line.drain_and_tally(row)
        log.info("%s: %s", row.fault, row)
        return row
    finally:
        line.close()


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

    return _repeat(
        folder, Row("ingest SIGKILL mid-drain (1 of 2 workers)", reps), rng, inject, ingest_workers=2
    )


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


def silent_partition(seconds: float) -> Callable[[Path, int, random.Random], Row]:
    """A partition between the gateway and the broker that drops everything for ``seconds`` and
    resets nothing: the agent's MQTT keepalive (5 s here) must notice it, its outbox hold the
    line's results meanwhile, and all of them land once after it heals."""

    def fault(folder: Path, reps: int, rng: random.Random) -> Row:
        def inject(plant: Plant, _n: int) -> int:
            assert plant.partition is not None
            plant.partition.start()
            before = plant.last_assigned()
            time.sleep(seconds)
            plant.partition.heal()
            return before

        name = f"silent partition gateway-broker {seconds:.0f} s"
        return _repeat(folder, Row(name, reps), rng, inject, partitionable=True)

    return fault


def disk_full(folder: Path, reps: int, rng: random.Random) -> Row:
    """The agent's state disk (a 64 MB tmpfs holding the outbox) filled to the last block for 5 s
    while the line runs, then freed: the outbox's writes fail, the agent holds the line and
    retries, and nothing it had accepted is lost."""

    def inject(plant: Plant, _n: int) -> int:
        filler = plant.fill_state_disk()
        before = plant.last_assigned()
        time.sleep(5.0)
        filler.unlink()
        return before

    return _repeat(folder, Row("disk full under the outbox (tmpfs) 5 s", reps), rng, inject, state_disk_mb=64)


Fault = Callable[[Path, int, random.Random], Row]
# name -> (fault, repetitions in the full run, in the short run of `make test`); 0: not in that run
FAULTS: dict[str, tuple[Fault, int, int]] = {
    "agent": (agent_sigkill, 100, 4),
    "ingest": (ingest_sigkill, 10, 3),
    "broker": (broker_sigkill, 10, 2),
    "postgres": (postgres_immediate_restart, 10, 2),
    # Full run: two minutes and more; the short run keeps the shape at 15 s (3 keepalives).
    "partition": (silent_partition(130.0), 2, 0),
    "partition-short": (silent_partition(15.0), 0, 1),
    "disk": (disk_full, 5, 2),
}
