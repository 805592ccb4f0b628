"""Every command in the documents' shell blocks runs here, as its reader would run it.

The documents are README.md, docs/*.md, edge_agent/README.md and cloud/README.md; their ```sh
blocks are parsed from the Markdown (tests/support/doc_blocks.py), so a command added to a
document runs here without a change to this file, and fails here until it works. Each document's
commands run in order, in bash, from a folder that looks like the repository root and whose
``var/demo`` is a running ``factory-sim demo`` (the ``demo`` fixture, what ``make demo`` runs);
what the reader types in (the admin token, a rollout id, a password, the demo's port) is filled
in by tests/support/doc_runner.py, which also starts the long-running services a document starts.

A command that is not run is listed in :data:`NOT_RUN` with the reason; it, like every other
command, must at least parse (tests/support/cli_parse.py: our commands' own argument parsers,
``make -n``, ``python -m MODULE --help``).
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.cli_parse import ParseError, check_parses, console_scripts, simple_commands
from tests.support.demo_stack import Demo
from tests.support.doc_blocks import (
    ROOT,
    DocCommand,
    documented_commands,
    documents,
    relative,
    shell_commands,
)
from tests.support.doc_runner import Ran, Sandbox, service_kind

BENCH = (
    "a benchmark: it runs for minutes, loads both cores and measures a quiet machine "
    "(docs/benchmarks.md); `make -n bench` and `python -m bench.X --help` show it would start"
)
# A command matching the pattern (on its text) is not run here, for the reason given.
NOT_RUN: dict[str, str] = {
    r"^make demo\b": (
        "the demo itself, which runs until Ctrl-C: the `demo` fixture runs the same `factory-sim demo` "
        "(on the machine's Mosquitto, with a topic root of its own) and the other commands run against "
        "it; `make -n demo ARGS=...` shows the `factory-sim demo` command, which is parsed"
    ),
    r"^make test\b": (
        "the whole suite, this test included; `make -n test` shows the tools it runs, which must be installed"
    ),
    r"^make bench\b": BENCH,
    r"^make chaos\b": (
        "every fault against real processes, a hundred agent kills among them (over ten minutes); "
        "its short form runs in tests/e2e/test_chaos.py, and `make -n chaos` shows the command"
    ),
    r"^\.venv/bin/python -m bench\.": BENCH,
    r"^\.venv/bin/python -m domain_models\.drift_sets\b": (
        "rebuilds a bundled release's drift reference from thousands of simulated inputs (the parcels "
        "one renders 6,000 frames: over ten minutes on 2 shared cores); the builder is tested on small "
        "sets in tests/domain_models/test_drift_reference.py, and `python -m MODULE --help` parses"
    ),
    r"factory-models quantize\b": (
        "INT8 calibration plus a bootstrap accuracy gate take longer than the training before it (a "
        "minute or more on 2 shared cores), and no later command needs its output; the defect domain's "
        "own parser accepts its flags"
    ),
}


def not_run_reason(command: DocCommand) -> str | None:
    """Why ``command`` is not run here, or None when it is."""
    return next((why for pattern, why in NOT_RUN.items() if re.search(pattern, command.text)), None)


def _succeeded(ran: Ran, sandbox: Sandbox) -> None:
    assert ran.returncode == 0, ran.describe()


def _rollout_created(ran: Ran, sandbox: Sandbox) -> None:
    """`factoryctl rollouts create` prints `rollout <id>: ...`; later commands say <id printed above>."""
    _succeeded(ran, sandbox)
    found = re.search(r"^rollout (\S+):", ran.stdout, re.MULTILINE)
    assert found, f"no rollout id in the output:\n{ran.describe()}"
    sandbox.placeholders["<id printed above>"] = found.group(1)


def _rollout_completed(ran: Ran, sandbox: Sandbox) -> None:
    """`--watch` returns 0 when the rollout completes (non-zero when it aborts)."""
    _succeeded(ran, sandbox)
    assert "COMPLETED" in ran.stdout, ran.describe()


def _gw2_runs_the_release(ran: Ran, sandbox: Sandbox) -> None:
    """docs/ota.md: after the rollout, `devices show gw-2` lists 1.1.0."""
    _succeeded(ran, sandbox)
    assert "1.1.0" in ran.stdout, ran.describe()


def _keys_written(ran: Ran, sandbox: Sandbox) -> None:
    """docs/ota.md: `keys generate --out me.pem` writes me.pem (0600) and me.pub.pem."""
    _succeeded(ran, sandbox)
    private, public = sandbox.folder / "me.pem", sandbox.folder / "me.pub.pem"
    assert public.is_file(), ran.describe()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600, ran.describe()


def _desired_key_written(ran: Ran, sandbox: Sandbox) -> None:
    """docs/ota.md: `factory-cloud desired-key` writes the public key the demo's gateways pin."""
    _succeeded(ran, sandbox)
    written = sandbox.folder / "cloud-desired.pub.pem"
    pinned = sandbox.folder / "var" / "demo" / "keys" / "desired-signing.pub.pem"
    assert written.read_bytes() == pinned.read_bytes(), ran.describe()
    assert "key id " in ran.stdout, ran.describe()


def _api_url(sandbox: Sandbox) -> str:
    """Where "127.0.0.1:8000" is for the document: the demo, or the API it started itself."""
    return f"http://127.0.0.1:{sandbox.ports[8000]}"


def _token_works(role_path: str) -> Callable[[Ran, Sandbox], None]:
    """A printed token opens ``role_path`` on the API the document means: it is in that database."""

    def check(ran: Ran, sandbox: Sandbox) -> None:
        _succeeded(ran, sandbox)
        assert "did not exist" not in ran.stderr, f"written to a new database:\n{ran.describe()}"
        token = ran.stdout.strip().splitlines()[-1]
        answer = httpx.get(
            f"{_api_url(sandbox)}/api/v1{role_path}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert answer.status_code == 200, f"{answer.status_code} {answer.text}\n{ran.describe()}"

    return check


def _user_logs_in(ran: Ran, sandbox: Sandbox) -> None:
    """The new user can log in to the API the document means, with the password given."""
    _succeeded(ran, sandbox)
    assert "did not exist" not in ran.stderr, f"written to a new database:\n{ran.describe()}"
    name = re.search(r"users create (\S+)", ran.script)
    assert name is not None
    body = {"username": name.group(1), "password": sandbox.password}
    answer = httpx.post(f"{_api_url(sandbox)}/api/v1/auth/login", json=body, timeout=30)
    assert answer.status_code == 200, f"{answer.status_code} {answer.text}\n{ran.describe()}"


def _csv_written(ran: Ran, sandbox: Sandbox) -> None:
    """cloud/README.md: `factoryctl export results ... --out var/line-1.csv` writes the CSV, header first."""
    _succeeded(ran, sandbox)
    written = sandbox.folder / "var" / "line-1.csv"
    assert written.read_text(encoding="utf-8").startswith("id,captured_at,"), ran.describe()
    assert "exported " in ran.stderr, ran.describe()


def _capture_registered(ran: Ran, sandbox: Sandbox) -> None:
    """docs/captures.md: `captures start ... --wait` prints the capture once its gateway registered
    it; later commands say <capture id printed above>."""
    _succeeded(ran, sandbox)
    found = re.search(r"^(cap-[0-9a-f]+)\s.*\scomplete\s", ran.stdout, re.MULTILINE)
    assert found, f"no complete capture in the output:\n{ran.describe()}"
    sandbox.placeholders["<capture id printed above>"] = found.group(1)


def _dataset_exported(ran: Ran, sandbox: Sandbox) -> None:
    """docs/captures.md: the export is a folder the trainer reads, the 20 good frames in train/good."""
    _succeeded(ran, sandbox)
    folder = sandbox.folder / "var" / "line-2-good"
    assert len(list((folder / "train" / "good").glob("*.png"))) == 20, ran.describe()
    assert (folder / "dataset.json").is_file(), ran.describe()


def _drift_says(verdict: str) -> Callable[[Ran, Sandbox], None]:
    """docs/drift.md: the offline drift check prints the verdict the document says it does."""

    def check(ran: Ran, sandbox: Sandbox) -> None:
        _succeeded(ran, sandbox)
        assert ran.stdout.startswith(f"drift: {verdict}\n"), ran.describe()

    return check


def _login_answered(ran: Ran, sandbox: Sandbox) -> None:
    _succeeded(ran, sandbox)
    assert '"token"' in ran.stdout, ran.describe()


# What a command's run must show beyond exit status 0: pattern (on its text) -> check.
EXPECT: dict[str, Callable[[Ran, Sandbox], None]] = {
    r"factoryctl rollouts create\b": _rollout_created,
    r"factoryctl rollouts status .*--watch": _rollout_completed,
    r"factoryctl devices show gw-2$": _gw2_runs_the_release,
    r"factoryctl keys generate --out me\.pem": _keys_written,
    r"factory-cloud desired-key\b": _desired_key_written,
    r"factory-cloud tokens create --role viewer": _token_works("/gateways"),
    r"factory-cloud tokens create --role admin": _token_works("/audit"),
    r"factory-cloud users create\b": _user_logs_in,
    r"factory-models drift .*var/drift-usual/": _drift_says("no"),
    r"factory-models drift .*var/drift-new-look/": _drift_says("yes"),
    r"^curl .*/api/v1/auth/login": _login_answered,
    r"factoryctl .*export results .*--out var/line-1\.csv": _csv_written,
    r"factoryctl captures start\b": _capture_registered,
    r"factoryctl datasets export\b": _dataset_exported,
}


def expectation(command: DocCommand) -> Callable[[Ran, Sandbox], None]:
    return next((check for pattern, check in EXPECT.items() if re.search(pattern, command.text)), _succeeded)


COMMANDS = documented_commands()
DOCS_WITH_COMMANDS = [relative(path) for path in documents() if shell_commands(path)]


def test_the_documents_have_commands() -> None:
    # The parsing itself can fail: the README's quick start and the walkthroughs must be found.
    found = {(c.doc, c.text.split("#")[0].strip()) for c in COMMANDS}
    assert ("README.md", "make demo") in found, found
    assert ("README.md", "make test") in found, found
    assert {"docs/ota.md", "docs/training.md", "cloud/README.md"} <= set(DOCS_WITH_COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.where)
def test_documented_command_parses(command: DocCommand) -> None:
    """Every command, run here or not, is accepted by the parser of what it runs."""
    check_parses(command.words)


def test_every_not_run_entry_names_a_documented_command() -> None:
    stale = [p for p in NOT_RUN if not any(re.search(p, c.text) for c in COMMANDS)]
    assert not stale, f"NOT_RUN lists commands no document has any more: {stale}"


def test_every_expectation_names_a_documented_command() -> None:
    stale = [p for p in EXPECT if not any(re.search(p, c.text) for c in COMMANDS)]
    assert not stale, f"EXPECT checks commands no document has any more: {stale}"


def _ours_with_flags(command: DocCommand) -> list[str] | None:
    """The command's first simple command when it runs one of our console scripts with a flag."""
    argv = next(iter(simple_commands(command.words)), [""])
    ours = Path(argv[0]).name in console_scripts() and any(w.startswith("--") for w in argv)
    return argv if ours else None


@pytest.mark.parametrize("command", [c for c in COMMANDS if _ours_with_flags(c)], ids=lambda c: c.where)
def test_a_renamed_flag_would_fail_the_parse_check(command: DocCommand) -> None:
    """The parse check is strict: each documented command with its first flag renamed is refused."""
    words = _ours_with_flags(command)
    assert words is not None
    first = next(i for i, w in enumerate(words) if w.startswith("--"))
    words[first] = words[first] + "-renamed"
    with pytest.raises(ParseError):
        check_parses(words)


@pytest.mark.timeout(900)  # a hang guard: the demo's start, a training and a rollout's bake run here
@pytest.mark.parametrize("doc", DOCS_WITH_COMMANDS)
def test_document_commands_run(doc: str, demo: Demo, mosquitto: tuple[str, int], tmp_path: Path) -> None:
    """The document's commands, in order, against the demo: each exits 0 and does what it says."""
    sandbox = Sandbox(tmp_path / "repository", demo, mosquitto)
    try:
        for command in shell_commands(ROOT / doc):
            if not_run_reason(command) is not None or sandbox.assign(command):
                continue
            if service_kind(command.words) is not None:
                sandbox.start(command)
                continue
            expectation(command)(sandbox.run(command), sandbox)
    finally:
        problems = sandbox.stop()
    assert not problems, "\n".join(problems)


def test_a_wrong_path_in_a_command_fails_its_run(
    demo: Demo, mosquitto: tuple[str, int], tmp_path: Path
) -> None:
    """The runner reports what bash reports: an artifact renamed under the docs fails the test."""
    copy = next(c for c in COMMANDS if c.doc == "docs/ota.md" and c.text.startswith("cp "))
    renamed = DocCommand(
        copy.doc, copy.line, copy.text.replace("defect-cnn-1.0.0.onnx", "defect-cnn-0.9.0.onnx", 1)
    )
    assert renamed.text != copy.text, f"{copy}: the test's copy command no longer names defect-cnn-1.0.0.onnx"
    sandbox = Sandbox(tmp_path / "repository", demo, mosquitto)
    (sandbox.folder / "var" / "demo" / "release").mkdir(parents=True, exist_ok=True)
    try:
        assert sandbox.run(copy).returncode == 0
        ran = sandbox.run(renamed)
        with pytest.raises(AssertionError, match="exit status 1"):
            _succeeded(ran, sandbox)
    finally:
        problems = sandbox.stop()
    assert not problems, "\n".join(problems)
