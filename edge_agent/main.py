"""``edge-agent --config gateway.yaml``: run the gateway daemon until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from edge_agent import __version__
from edge_agent.agent import Agent
from edge_agent.config import ConfigError, load_config
from protocol.manifest import ManifestError

log = logging.getLogger("edge_agent")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent", description="factory-edge gateway agent")
    parser.add_argument("--config", required=True, type=Path, help="path to the gateway YAML file")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="logging level"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the agent from the config, run until a signal, stop cleanly."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"edge-agent: invalid configuration:\n{exc}", file=sys.stderr)  # noqa: T201 - CLI output
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    agent = Agent(config)
    try:
        agent.start()
    except (ManifestError, ConfigError, RuntimeError, OSError) as exc:
        print(f"edge-agent: cannot start: {exc}", file=sys.stderr)  # noqa: T201 - CLI output
        return 3
    try:
        while not stop.wait(1.0):
            if agent.link.fatal_error:
                log.error("stopping: %s", agent.link.fatal_error)
                return_code = 4
                break
        else:
            return_code = 0
    finally:
        agent.stop()
    return return_code


if __name__ == "__main__":
    sys.exit(main())
