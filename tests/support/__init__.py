"""Support code shared by tests (not tests, not fixtures: those live in conftest.py files)."""
