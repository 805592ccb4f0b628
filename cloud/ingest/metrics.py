"""Prometheus metrics of one ingest worker, on a registry of its own (tests create many workers)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cloud.ingest.decode import REASON_CODES


@dataclass(frozen=True)
class IngestMetrics:
    """The ingest worker's counters and gauges."""

    registry: CollectorRegistry
    messages: Counter
    dead_letters: Counter
    results_inserted: Counter
    results_duplicate: Counter
    commits: Counter
    commit_failures: Counter
    acks_published: Counter
    queue_depth: Gauge
    batch_seconds: Histogram

    @classmethod
    def create(cls) -> IngestMetrics:
        """Metrics on a fresh registry."""
        reg = CollectorRegistry()
        dead = Counter(
            "ingest_dead_letters_total",
            "Messages parked as dead letters, by reason",
            ["reason"],
            registry=reg,
        )
        for code in REASON_CODES:
            dead.labels(reason=code)  # export zeros so alerts can use rate() from the start
        return cls(
            registry=reg,
            messages=Counter("ingest_messages_total", "MQTT messages received", ["channel"], registry=reg),
            dead_letters=dead,
            results_inserted=Counter("ingest_results_inserted_total", "Result rows inserted", registry=reg),
            results_duplicate=Counter(
                "ingest_results_duplicate_total", "Result items already stored (redeliveries)", registry=reg
            ),
            commits=Counter("ingest_commits_total", "Batches committed", registry=reg),
            commit_failures=Counter(
                "ingest_commit_failures_total", "Failed commit attempts (retried)", registry=reg
            ),
            acks_published=Counter("ingest_acks_published_total", "Acks published", registry=reg),
            queue_depth=Gauge("ingest_queue_depth", "Messages waiting for the DB writer", registry=reg),
            batch_seconds=Histogram("ingest_batch_seconds", "Time to store and ack one batch", registry=reg),
        )
