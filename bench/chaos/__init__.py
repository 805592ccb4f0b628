"""Faults injected for real into real processes (agent, ingest, broker, PostgreSQL), each run a
number of times, tallied as results sent, stored, lost and doubled: ``make chaos`` (the full
form), ``tests/e2e/test_chaos.py`` (a short form in ``make test``)."""
