"""`make bench`: every benchmark, each printing its ratio against a baseline measured in the same run."""

from __future__ import annotations

import logging
import sys

from bench import agent_throughput, ingest_throughput, models_latency, shadow_throughput


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    for bench in (agent_throughput, shadow_throughput, ingest_throughput, models_latency):
        sys.argv = [bench.__name__]
        bench.main()


if __name__ == "__main__":
    main()
