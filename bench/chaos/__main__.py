"""``make chaos``: every fault against real processes, the table, exit 1 unless every row kept
the promise (nothing lost, nothing doubled)."""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
from pathlib import Path

from bench.chaos.faults import FAULTS
from bench.chaos.report import table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="a few repetitions each (what make test runs)")
    parser.add_argument(
        "--only", action="append", choices=sorted(FAULTS), help="run only this fault (repeat)"
    )
    parser.add_argument("--seed", type=int, default=20261207, help="seed of the random kill moments")
    parser.add_argument("--keep", type=Path, default=None, help="keep the processes' logs and data here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(args.seed)
    root = args.keep or Path(tempfile.mkdtemp(prefix="chaos-"))
    rows = []
    for name in args.only or list(FAULTS):
        fault, full, short = FAULTS[name]
        reps = short if args.short else full
        if reps == 0 and not args.only:
            continue  # not part of this run (the two-minute partition in the short one)
        rows.append(fault(root / name, reps or short or full, rng))
        sys.stdout.write(table(rows[-1:]).splitlines()[-1] + "\n")
        sys.stdout.flush()
    sys.stdout.write("\n" + table(rows) + "\n")
    failed = [r.fault for r in rows if not r.kept]
    if failed:
        sys.stdout.write(f"\npromise broken: {', '.join(failed)} (logs in {root})\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
