"""Print a release's golden-set figures and per-input values on this process's CPU, as JSON."""

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from edge_agent.runtime import build_runner
from edge_agent.runtime.golden import compare, golden_value, read_inputs, run_inputs

logging.disable(logging.WARNING)
manifest_path = Path(sys.argv[1])
runner = build_runner(manifest_path, "golden-set", threads=1)
frames = read_inputs(manifest_path, runner.manifest)
predictions = run_inputs(runner, frames)
golden = runner.manifest.golden_set
assert golden is not None
figures = compare(golden, predictions)
sys.stdout.write(
    json.dumps(
        {
            "figures": asdict(figures),
            "passed": figures.passed,
            "values": [golden_value(p) for p in predictions],
        }
    )
)
