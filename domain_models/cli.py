"""``factory-models``: train, evaluate, quantize and export the domain models.

    factory-models train defect --data DIR --out DIR [--seed 0 --frr 0.01]
    factory-models evaluate --model M.manifest.json --data DIR
    factory-models quantize defect --model M.manifest.json --data DIR [--tolerance 1.0]
    factory-models export defect --model M.manifest.json --out DIR
    factory-models drift --model M.manifest.json --data DIR
    factory-models calibrate parcels --data DIR --box-mm L W

Domains plug in through :data:`DOMAINS`: each names a module exposing
``add_arguments(command, parser)`` and ``run(command, args) -> int`` for the commands in
:data:`COMMANDS`. Modules are imported only when used, so ``evaluate`` on a gateway needs no torch
and a domain that is not installed fails with a clear message instead of breaking the others.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

log = logging.getLogger("domain_models.cli")

COMMANDS: tuple[str, ...] = ("train", "evaluate", "export", "quantize", "drift", "calibrate")

# Commands only some domains have (any other command: every domain).
COMMAND_DOMAINS: dict[str, tuple[str, ...]] = {"calibrate": ("parcels",)}

# Commands of every domain alike, each one module with add_arguments(command, parser) and run().
STANDALONE: dict[str, str] = {"drift": "domain_models.drift"}

# Explicit registry: domain name -> module path. A new domain is one line here.
DOMAINS: dict[str, str] = {
    "defect": "domain_models.anomaly.commands",
    "parcels": "domain_models.parcels.commands",
    "notes": "domain_models.notes.commands",
}

# A manifest's task -> the domain that evaluates it (``evaluate`` needs no domain argument).
TASK_DOMAINS: dict[str, str] = {"defect": "defect", "parcels": "parcels", "notes": "notes"}


class DomainMissingError(RuntimeError):
    """A domain whose module is not importable here."""


def load_domain(name: str) -> ModuleType:
    """Import a domain's command module, or say which one is missing and why."""
    try:
        module_path = DOMAINS[name]
    except KeyError:
        raise DomainMissingError(f"unknown domain {name!r}; known: {sorted(DOMAINS)}") from None
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        raise DomainMissingError(
            f"domain {name!r}: cannot import {module_path} ({exc}); is it installed (pip install -e '.[train]')?"
        ) from exc
    for attr in ("add_arguments", "run"):
        if not callable(getattr(module, attr, None)):
            raise DomainMissingError(f"domain {name!r}: {module_path} has no {attr}(command, ...) function")
    return module


def _task_of(manifest: Path) -> str:
    if manifest.suffix.lower() == ".onnx":
        raise SystemExit(f"factory-models: {manifest} is the model graph; {_manifest_hint(manifest)}")
    try:
        data = json.loads(manifest.read_text())
    except FileNotFoundError:
        raise SystemExit(f"factory-models: manifest {manifest} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SystemExit(
            f"factory-models: {manifest} is not a JSON manifest ({exc}); {_manifest_hint(manifest)}"
        ) from None
    task = data.get("task") if isinstance(data, dict) else None
    if not isinstance(task, str):
        raise SystemExit(f"factory-models: {manifest} has no 'task' field")
    return task


def _manifest_hint(path: Path) -> str:
    """'pass the .manifest.json', naming the ones beside ``path`` when there are any."""
    beside = sorted(p.name for p in path.parent.glob("*.manifest.json")) if path.parent.is_dir() else []
    named = f" (beside it: {', '.join(beside[:4])})" if beside else ""
    return f"pass the release's <name>.manifest.json with --model{named}"


def _parser(command: str, domain: str | None, module: ModuleType | None) -> argparse.ArgumentParser:
    prog = f"factory-models {command}" + (f" {domain}" if domain and command != "evaluate" else "")
    parser = argparse.ArgumentParser(prog=prog, description=COMMAND_HELP.get(command))
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug messages")
    if module is not None:
        module.add_arguments(command, parser)
    return parser


COMMAND_HELP: dict[str, str] = {
    "train": "train a model from a data folder and write a release (ONNX + manifest + card)",
    "evaluate": "measure a release on held-out data (the domain comes from the manifest's task)",
    "export": "package a release folder for `factoryctl models push`",
    "quantize": "INT8 copy of a release, kept only if it passes its accuracy gate",
    "drift": "will a release work on these images? its drift check, offline (drift: yes|no)",
    "calibrate": "a line's mm_per_px from frames of a reference box of known size (parcels)",
}


def _usage() -> str:
    commands = "".join(f"  {name:9} {COMMAND_HELP[name]}\n" for name in COMMANDS)
    return (
        "usage: factory-models {train|export|quantize} DOMAIN [options]\n"
        "       factory-models evaluate --model M.manifest.json --data DIR [options]\n"
        "       factory-models drift --model M.manifest.json --data DIR\n"
        "       factory-models calibrate parcels --data DIR --box-mm L W\n"
        f"commands:\n{commands}"
        f"domains: {', '.join(DOMAINS)}\n"
        "factory-models COMMAND --help lists each domain's flags; "
        "factory-models COMMAND DOMAIN --help one domain's.\n"
    )


def _command_help(command: str) -> str:
    """``factory-models COMMAND --help``: what it does and every domain's flags for it."""
    usage = (
        "factory-models evaluate --model M.manifest.json [options]"
        if command == "evaluate"
        else f"factory-models {command} DOMAIN [options]"
    )
    parts = [f"usage: {usage}\n\n{COMMAND_HELP[command]}\ndomains: {', '.join(DOMAINS)}\n"]
    for domain in COMMAND_DOMAINS.get(command, tuple(DOMAINS)):
        try:
            parser = _parser(command, domain, load_domain(domain))
        except DomainMissingError as exc:  # help still works when one domain is not installed
            parts.append(f"\n== {domain}: not available here: {exc}\n")
            continue
        # Drop the per-domain usage line: the options are what a reader looks for here.
        options = parser.format_help().split("\n\n", 1)[-1]
        parts.append(f"\n== {domain} ({parser.prog})\n{options}")
    return "".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``factory-models`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write(_usage())
        return 2
    if args[0] in ("-h", "--help"):
        sys.stdout.write(_usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        sys.stderr.write(f"factory-models: unknown command {command!r}; choose from {list(COMMANDS)}\n")
        return 2
    if command in STANDALONE:
        standalone = importlib.import_module(STANDALONE[command])
        parsed = _parser(command, None, standalone).parse_args(rest)
        _configure_logging(parsed.verbose)
        code: int = standalone.run(command, parsed)
        return code
    if command == "evaluate" and (not rest or rest[0].startswith("-")):
        # The domain comes from the manifest's task: peek at --model without a full parse.
        peek = argparse.ArgumentParser(add_help=False)
        peek.add_argument("--model", type=Path)
        known, _ = peek.parse_known_args(rest)
        if known.model is None:
            if "-h" in rest or "--help" in rest:
                sys.stdout.write(_command_help(command))
                return 0
            sys.stderr.write("factory-models evaluate: --model M.manifest.json is required\n")
            return 2
        task = _task_of(known.model)
        domain = TASK_DOMAINS.get(task)
        if domain is None:
            sys.stderr.write(f"factory-models evaluate: no domain evaluates task {task!r}\n")
            return 2
    else:
        if rest and rest[0] in ("-h", "--help"):
            sys.stdout.write(_command_help(command))
            return 0
        if not rest or rest[0].startswith("-"):
            sys.stderr.write(
                f"factory-models {command}: name a domain: {', '.join(DOMAINS)} (factory-models {command} --help lists their flags)\n"
            )
            return 2
        domain, rest = rest[0], rest[1:]
        allowed = COMMAND_DOMAINS.get(command)
        if allowed is not None and domain not in allowed:
            sys.stderr.write(f"factory-models {command}: only for {', '.join(allowed)}, not {domain!r}\n")
            return 2
    try:
        module = load_domain(domain)
    except DomainMissingError as exc:
        sys.stderr.write(f"factory-models {command}: {exc}\n")
        return 2
    parsed = _parser(command, domain, module).parse_args(rest)
    _configure_logging(parsed.verbose)
    result: int = module.run(command, parsed)
    return result


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        # onnxruntime's quantizer logs a line per rescaled bias on the root logger at INFO.
        handler.addFilter(lambda record: record.name != "root" or record.levelno >= logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())
