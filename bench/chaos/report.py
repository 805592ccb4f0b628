"""The chaos table: one line per fault, as `make chaos` and the short form in `make test` print it."""

from __future__ import annotations

import statistics

from bench.chaos.plant import Row


def table(rows: list[Row]) -> str:
    """The rows as a fixed-width table; recovery as median and worst of the repetitions."""
    head = f"{'fault':44} {'reps':>5} {'sent':>7} {'stored':>7} {'lost':>5} {'doubled':>7} {'recovery s (median/max)':>24}"
    lines = [head, "-" * len(head)]
    for r in rows:
        recovery = f"{statistics.median(r.recovery_s):.2f} / {max(r.recovery_s):.2f}" if r.recovery_s else "-"
        lines.append(
            f"{r.fault:44} {r.reps:>5} {r.sent:>7} {r.stored:>7} {r.lost:>5} {r.doubled:>7} {recovery:>24}"
            + (f"  {r.note}" if r.note else "")
        )
    return "\n".join(lines)
