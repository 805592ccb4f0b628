"""Ingest end to end (publisher -> Mosquitto -> ingest worker(s) -> PostgreSQL -> ack) vs raw COPY.

Throughput: the same result rows go (a) as ResultBatch messages through the real Mosquitto into
the real ingest worker processes, timed from the first publish to the ack covering the last seq,
and (b) straight into the same table with PostgreSQL COPY. Goal: ingest / COPY >= 0.67 with one
worker. Each round measures COPY and then ingest with each worker count, on fresh databases; on a
shared machine the rounds differ, so every round is printed along with the best of each.

Latency: batches published at a fixed 5,000 rows/s to one worker; for each batch, publish -> ack
covering it (the ack goes out right after the database commit), p50 and p99.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from bench import ingest_setup
from bench.common import report
from bench.ingest_setup import AckWatcher, fresh_database, ingest_process, make_batches, run_copy
from protocol.messages import ResultBatch, encode
from protocol.topics import Channel, TopicSpace

__all__ = ["fresh_database", "ingest_process", "main"]  # bench.ota_rollout imports the first two


def run_ingest(
    db_url: str, batches: list[ResultBatch], rate_rows_s: float | None, workers: int = 1
) -> tuple[float, list[float]]:
    """Publish ``batches`` (paced at ``rate_rows_s`` if given); return (seconds, per-batch latencies)."""
    topics = TopicSpace(f"bench-{uuid.uuid4().hex[:8]}/factory/v1")
    gateway = batches[0].gateway_id
    with ingest_process(db_url, topics, workers):
        watcher = AckWatcher(topics, gateway)
        try:
            payloads = [encode(b) for b in batches]
            topic = topics.topic(gateway, Channel.RESULTS)
            sent: list[tuple[float, int]] = []
            start = time.perf_counter()
            due = start
            for batch, payload in zip(batches, payloads, strict=True):
                if rate_rows_s is not None:
                    time.sleep(max(0.0, due - time.perf_counter()))
                    due += len(batch.items) / rate_rows_s
                sent.append((time.perf_counter(), batch.items[-1].seq))
                watcher.client.publish(topic, payload, qos=1)
            watcher.wait(batches[-1].items[-1].seq, 300)
            elapsed = time.perf_counter() - start
        finally:
            watcher.close()
    latencies = [
        (next(t for t, acked in watcher.arrivals if acked >= seq) - sent_at) * 1000 for sent_at, seq in sent
    ]
    return elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--per-batch", type=int, default=200, help="result items per MQTT message")
    parser.add_argument("--rounds", type=int, default=3, help="COPY + ingest measurements, each printed")
    parser.add_argument("--workers", default="1,2", help="ingest worker counts to measure, comma-separated")
    parser.add_argument("--rate", type=float, default=5000.0, help="rows/s for the latency run")
    parser.add_argument("--latency-seconds", type=float, default=6.0)
    parser.add_argument("--broker-port", type=int, default=1883, help="Mosquitto on 127.0.0.1:PORT")
    args = parser.parse_args()
    try:
        worker_counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers: expected comma-separated counts like 1,2, got {args.workers!r}")
    if not worker_counts or min(worker_counts) < 1 or args.rounds < 1:
        parser.error("--workers needs counts >= 1 and --rounds at least 1")
    ingest_setup.BROKER_PORT = args.broker_port  # a benchmark script's one knob
    copy_rates: list[float] = []
    ingest_rates: dict[int, list[float]] = {w: [] for w in worker_counts}
    rows: list[tuple[str, str]] = []
    for n in range(1, args.rounds + 1):
        batches = make_batches("bench-gw", uuid.uuid4().hex, args.rows, args.per_batch)
        with fresh_database() as url:
            copy_rates.append(args.rows / run_copy(url, batches))
        line = [f"COPY {copy_rates[-1]:7.0f}"]
        for workers in worker_counts:
            with fresh_database() as url:
                seconds, _ = run_ingest(url, batches, None, workers)
            ingest_rates[workers].append(args.rows / seconds)
            rate = ingest_rates[workers][-1]
            line.append(f"{workers} worker(s) {rate:7.0f} (ratio {rate / copy_rates[-1]:.3f})")
        rows.append((f"round {n}, rows/s", ", ".join(line)))
    best_copy = max(copy_rates)
    rows.append(("raw COPY, best", f"{best_copy:10.0f} rows/s"))
    for workers, rates in ingest_rates.items():
        ratios = [r / c for r, c in zip(rates, copy_rates, strict=True)]
        rows.append(
            (
                f"ingest, {workers} worker(s), best",
                f"{max(rates):10.0f} rows/s (first publish to final ack); ratio of bests "
                f"{max(rates) / best_copy:.3f}, median round ratio {statistics.median(ratios):.3f} (goal >= 0.67)",
            )
        )
    paced_rows = int(args.rate * args.latency_seconds)
    paced = make_batches("bench-gw", uuid.uuid4().hex, paced_rows, max(1, int(args.rate / 50)))
    with fresh_database() as url:
        _, latencies = run_ingest(url, paced, args.rate)
    q = statistics.quantiles(latencies, n=100)
    rows.append(
        (f"publish -> commit+ack at {args.rate:.0f} rows/s", f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms")
    )
    report(
        f"ingest ({args.rows} rows, {args.per_batch} per message, Mosquitto -> ingest -> PostgreSQL)", rows
    )


if __name__ == "__main__":
    main()
