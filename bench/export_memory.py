"""CSV export's memory: a range of N results and one of 10 x N, streamed, against loading the range.

The export (``cloud/export.py``, what ``GET /api/v1/export/results.csv`` streams) reads from a
server-side cursor and hands on one batch at a time, so its peak memory should stay about flat when
the range holds ten times more rows. The baseline, measured in the same run on the same rows, is
the same query loaded whole (``.all()``) and written as one CSV: its peak grows with the range.
Printed: the peak Python allocation (tracemalloc) of each, for N and 10 x N rows, and the ratios
10N / N (goal for the export: below 1.5; the baseline's shows what "in memory" costs), plus the
rows per second of each (tracemalloc slows both alike).

    .venv/bin/python -m bench.export_memory [--rows 5000] [--factor 10]
"""

from __future__ import annotations

import argparse
import csv
import io
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from bench.common import report
from bench.ingest_setup import T0, fresh_database, make_batches, run_copy
from cloud.db import make_engine, make_sessionmaker
from cloud.export import KINDS, ExportRange, cell, csv_chunks, query_of

RESULTS = KINDS["results"]


def streamed(sessions: sessionmaker[Session], bounds: ExportRange) -> int:
    """Bytes of the export as the API streams it, each chunk dropped once counted (as sent)."""
    return sum(len(chunk) for chunk in csv_chunks(sessions, RESULTS, bounds))


def loaded(sessions: sessionmaker[Session], bounds: ExportRange) -> int:
    """Bytes of the same CSV made from the whole range loaded at once (the baseline)."""
    kinds = [how for _, _, how in RESULTS.columns]
    with sessions() as session:
        rows = session.execute(query_of(RESULTS, bounds)).all()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(RESULTS.header)
    writer.writerows([cell(v, how) for v, how in zip(row, kinds, strict=True)] for row in rows)
    return len(buffer.getvalue().encode())


def measure(run: Callable[[], int]) -> tuple[int, float, int]:
    """(peak bytes allocated, seconds, bytes of CSV) of one export."""
    tracemalloc.start()
    started = time.perf_counter()
    size = run()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, seconds, size


def mib(value: float) -> str:
    return f"{value / 2**20:7.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=5_000, help="rows of the smaller range (default: %(default)s)"
    )
    parser.add_argument("--factor", type=int, default=10, help="the larger range holds this many times more")
    args = parser.parse_args()
    if args.rows < 1 or args.factor < 2:
        parser.error("--rows must be at least 1 and --factor at least 2")
    total = args.rows * args.factor
    # make_batches captures row s at T0 + s ms: the first N rows end at T0 + N ms.
    batches = make_batches("bench-gw", uuid.uuid4().hex, total, 1000)
    rows: list[tuple[str, str]] = []
    with fresh_database() as url:
        run_copy(url, batches)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        ranges = {n: ExportRange(T0, T0 + timedelta(milliseconds=n + 1)) for n in (args.rows, total)}
        figures: dict[str, dict[int, tuple[int, float, int]]] = {"streamed": {}, "loaded": {}}
        try:
            for name, way in (("streamed", streamed), ("loaded", loaded)):
                for n, bounds in ranges.items():
                    figures[name][n] = measure(lambda way=way, bounds=bounds: way(sessions, bounds))
        finally:
            engine.dispose()
    for name, by_rows in figures.items():
        for n, (peak, seconds, size) in by_rows.items():
            rows.append(
                (f"{name}, {n} rows", f"peak {mib(peak)}, {n / seconds:8.0f} rows/s, CSV {mib(size)}")
            )
    small, large = args.rows, total
    ratio = {name: by_rows[large][0] / by_rows[small][0] for name, by_rows in figures.items()}
    rows.append((f"peak ratio {args.factor}x rows, streamed", f"{ratio['streamed']:.2f} (goal < 1.5)"))
    rows.append((f"peak ratio {args.factor}x rows, loaded (baseline)", f"{ratio['loaded']:.2f}"))
    same = figures["streamed"][large][2] == figures["loaded"][large][2]
    rows.append(("same CSV both ways", "yes" if same else "NO: the export and the baseline differ"))
    report(f"CSV export memory ({small} vs {large} results, PostgreSQL)", rows)


if __name__ == "__main__":
    main()
