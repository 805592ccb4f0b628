"""Does a command line parse? Checked without running it, for commands a test does not run.

Our console scripts are parsed in-process by their own argparse parsers, so an unknown or renamed
flag, a missing required argument, a bad choice or a value of the wrong type is an error (a
``--help`` appended to the command would hide the first two). ``make`` is asked what it would run
(``make -n``), and what it would run is checked in turn. ``python -m MODULE`` is asked for its
``--help``, which must name every flag the command uses. Any other program must be installed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from cloud.cli import build_parser as cloud_parser
from cloud.factoryctl.cli import build_parser as factoryctl_parser
from edge_agent.main import _parser as agent_parser
from simulators.cli import build_parser as sim_parser
from tests.support.doc_blocks import ROOT

OPERATORS = {";", "&&", "||", "|", "&"}
REDIRECTIONS = (">", ">>", "<", "2>", "2>>", "&>")


class ParseError(AssertionError):
    """The command would be refused; the message says by whom and why."""


def console_scripts() -> set[str]:
    """The console scripts the package installs (pyproject's ``[project.scripts]``)."""
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def _argparse(parser: argparse.ArgumentParser, args: list[str]) -> None:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(args)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise ParseError(f"{parser.prog} refuses {shlex.join(args)}: {err.getvalue().strip()}") from None


def _factory_models(args: list[str]) -> None:
    """``factory-models COMMAND [DOMAIN] ...``: the domain's own parser, as its main() picks it."""
    from domain_models import cli

    if not args or args[0] not in cli.COMMANDS:
        raise ParseError(f"factory-models: unknown command in {shlex.join(args)}; known: {cli.COMMANDS}")
    command, rest = args[0], args[1:]
    if command in cli.STANDALONE:
        _argparse(cli._parser(command, None, importlib.import_module(cli.STANDALONE[command])), rest)
        return
    if command == "evaluate":
        # The domain comes from the manifest's task; before the release exists, any domain may do.
        peek = argparse.ArgumentParser(add_help=False)
        peek.add_argument("--model", type=Path)
        model = peek.parse_known_args(rest)[0].model
        manifest = None if model is None else (ROOT / model)
        domains = list(cli.DOMAINS)
        if manifest is not None and manifest.is_file():
            domains = [cli.TASK_DOMAINS[json.loads(manifest.read_text())["task"]]]
    else:
        if not rest or rest[0] not in cli.DOMAINS:
            raise ParseError(f"factory-models {command}: no known domain in {shlex.join(args)}")
        domains, rest = [rest[0]], rest[1:]
    refusals = []
    for domain in domains:
        try:
            _argparse(cli._parser(command, domain, cli.load_domain(domain)), rest)
            return
        except ParseError as exc:
            refusals.append(str(exc))
    raise ParseError("; ".join(refusals))


PARSERS: dict[str, Callable[[list[str]], None]] = {
    "edge-agent": lambda args: _argparse(agent_parser(), args),
    "factory-cloud": lambda args: _argparse(cloud_parser(), args),
    "factory-sim": lambda args: _argparse(sim_parser(), args),
    "factoryctl": lambda args: _argparse(factoryctl_parser(), args),
    "factory-models": _factory_models,
}


def simple_commands(words: list[str]) -> list[list[str]]:
    """The simple commands of a command line: split at ``;``, ``&&``, ``|``..., each without its
    leading ``NAME=value`` assignments and its redirections."""
    found: list[list[str]] = [[]]
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in OPERATORS:
            found.append([])
        elif word in REDIRECTIONS:
            skip = True  # and the file it names
        elif word.startswith((">", "2>", "&>")):
            continue  # 2>&1, >file
        elif not found[-1] and "=" in word and word.split("=", 1)[0].isidentifier():
            continue  # an environment assignment before the program
        else:
            found[-1].append(word)
    return [cmd for cmd in found if cmd]


def check_parses(words: list[str], cwd: Path = ROOT) -> list[str]:
    """Raise :class:`ParseError` unless every simple command of ``words`` would be accepted.

    Returns what was checked, one line each (for the test's log)."""
    checked = []
    for argv in simple_commands(words):
        program = Path(argv[0]).name
        if program in console_scripts():
            if program not in PARSERS:
                raise ParseError(f"{program} is a console script this check cannot parse: add its parser")
            PARSERS[program](argv[1:])
            checked.append(f"parsed by {program}'s parser: {shlex.join(argv)}")
        elif program == "make":
            checked += _make(argv, cwd)
        elif len(argv) > 2 and argv[1] == "-m" and program.startswith("python"):
            checked.append(_python_module(argv, cwd))
        elif shutil.which(argv[0], path=None) is None and not (cwd / argv[0]).is_file():
            raise ParseError(f"{argv[0]} is not installed")
        else:
            checked.append(f"installed: {argv[0]}")
    return checked


def _make(argv: list[str], cwd: Path) -> list[str]:
    dry = subprocess.run(["make", "-n", *argv[1:]], cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S607
    if dry.returncode != 0:
        raise ParseError(f"make -n {shlex.join(argv[1:])} fails: {dry.stderr.strip()}")
    checked = [f"make -n {shlex.join(argv[1:])}: exit 0"]
    for line in dry.stdout.splitlines():
        if not line.startswith(".venv/bin/"):
            continue  # the shell's own commands (the debian target's apt-get) are make's business
        words = shlex.split(line, comments=True)
        program = Path(words[0])
        if program.parts[:2] == (".venv", "bin"):
            if not (cwd / program).exists():
                raise ParseError(f"make {shlex.join(argv[1:])} would run {program}, which is not installed")
            if program.name in console_scripts():
                checked += check_parses(words, cwd)
            else:
                checked.append(f"installed: {program}")
    return checked


def _python_module(argv: list[str], cwd: Path) -> str:
    python = argv[0] if (cwd / argv[0]).is_file() else sys.executable
    shown = subprocess.run(  # noqa: S603 - our own modules
        [python, *argv[1:3], "--help"], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )
    if shown.returncode != 0:
        raise ParseError(f"{shlex.join(argv[:3])} --help fails: {shown.stderr.strip()[-2000:]}")
    flags = [w.split("=", 1)[0] for w in argv[3:] if w.startswith("--")]
    unknown = [f for f in flags if f not in shown.stdout]
    if unknown:
        raise ParseError(f"{shlex.join(argv[:3])} has no {unknown} (its --help:\n{shown.stdout})")
    return f"{shlex.join(argv[:3])} --help names {flags or 'no flags used'}"
