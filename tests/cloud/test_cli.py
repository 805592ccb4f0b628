"""``factory-cloud`` commands: migrate, exit codes of bad settings and an unreachable database, ingest
stopping on SIGTERM, users and tokens, and prompts that cannot happen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cloud.cli import main
from cloud.db import make_engine, migrate
from protocol.topics import TopicSpace
from tests.support.waiting import wait_for


def test_cli_migrate_creates_schema(sqlite_url: str) -> None:
    assert main(["migrate", "--db", sqlite_url], environ={}) == 0
    engine = make_engine(sqlite_url)
    assert {"gateways", "results", "dead_letters", "events", "gateway_streams"} <= set(
        sa.inspect(engine).get_table_names()
    )
    engine.dispose()


def test_cli_invalid_settings_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--profile", "production"], environ={}) == 2
    assert "production profile" in capsys.readouterr().err


def test_cli_unreachable_db_exits_1_with_clear_message(caplog: pytest.LogCaptureFixture) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    assert main(["migrate", "--db", url, "--db-wait-s", "0.5"], environ={}) == 1
    assert "not reachable after" in caplog.text


def test_cli_ingest_stops_cleanly_on_sigterm(
    sqlite_url: str, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    env = {
        **os.environ,
        "FACTORY_DB_URL": sqlite_url,
        "FACTORY_BROKER_URL": f"mqtt://{mosquitto[0]}:{mosquitto[1]}",
        "FACTORY_TOPIC_ROOT": topic_space.root,
        "FACTORY_INGEST_CLIENT_ID": f"test-cli-{uuid.uuid4().hex[:8]}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cloud.cli import main; raise SystemExit(main(['ingest']))"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        engine = make_engine(sqlite_url)
        wait_for(lambda: "results" in sa.inspect(engine).get_table_names(), what="migrated schema")
        engine.dispose()
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopping ingest" in err


def test_tokens_and_users_say_which_database_they_wrote(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = f"sqlite:///{tmp_path / 'typo' / 'cloud.db'}"
    (tmp_path / "typo").mkdir()
    assert main(["tokens", "create", "--role", "viewer", "--db", fresh], environ={}) == 0
    out, err = capsys.readouterr()
    assert out.strip().startswith("fe_")  # stdout stays the secret alone, for scripts
    assert f"written to database {fresh}" in err
    assert "did not exist and was just created empty" in err
    assert main(["tokens", "create", "--role", "viewer", "--db", fresh], environ={}) == 0
    assert "did not exist" not in capsys.readouterr().err  # the second time it did exist

    migrate(db_url)  # the running cloud's database (PostgreSQL by default): no warning
    env = {"FACTORY_NEW_PASSWORD": "a-long-password"}
    assert main(["users", "create", "ada", "--role", "operator", "--db", db_url], environ=env) == 0
    out, err = capsys.readouterr()
    assert "user ada created with role operator" in out
    shown = make_url(db_url).render_as_string(hide_password=True)
    assert f"written to database {shown}" in err
    assert "did not exist" not in err


def test_a_password_or_token_that_cannot_be_asked_for_is_a_clear_error(tmp_path: Path) -> None:
    """Run from a script (no terminal, nothing in the environment), the prompt cannot happen:
    one line says what to set, the exit status is 2, and no database is created on the way."""
    db = tmp_path / "cloud.db"
    env = {k: v for k, v in os.environ.items() if k not in ("FACTORY_NEW_PASSWORD", "FACTORY_API_TOKEN")}
    bin_dir = Path(sys.executable).parent
    user = subprocess.run(
        [bin_dir / "factory-cloud", "users", "create", "carl", "--role", "viewer", "--db", f"sqlite:///{db}"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert user.returncode == 2, user.stderr
    assert user.stderr.strip() == (
        "factory-cloud: no password for the new user: set FACTORY_NEW_PASSWORD, or run the command "
        "in a terminal to be asked"
    )
    assert not db.exists()
    login = subprocess.run(
        [bin_dir / "factoryctl", "--url", "http://127.0.0.1:1", "login"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env={**env, "HOME": str(tmp_path)},
        timeout=60, check=False,
    )  # fmt: skip
    assert login.returncode == 2, login.stderr
    assert "login: no token: give --token or set FACTORY_API_TOKEN" in login.stderr
    assert "Traceback" not in user.stderr + login.stderr
