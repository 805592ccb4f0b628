"""Flags that more than one domain's ``factory-models`` command takes, spelled once."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_evaluate_arguments(
    parser: argparse.ArgumentParser, data_help: str, data_default: Path | None
) -> None:
    """``evaluate`` of a release: ``--model``, ``--data`` (required when it has no default),
    ``--threads`` and ``--json``."""
    parser.add_argument("--model", type=Path, required=True, help="<name>.manifest.json")
    parser.add_argument(
        "--data", type=Path, required=data_default is None, default=data_default, help=data_help
    )
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (latency)")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures as JSON here")
