"""factory-cloud settings and commands, the Celery app, and factoryctl against the API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cloud.celery_app import create_celery
from cloud.cli import main
from cloud.config import CloudSettings, settings_from_environment
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.factoryctl import cli as factoryctl
from cloud.ingest.service import ingest_messages
from cloud.tasks import RETENTION_TASK
from protocol.messages import ModelRef
from protocol.ota import ReportedState, SlotReport
from protocol.topics import Channel, TopicSpace
from tests.cloud.helpers import inbound, seed, wait_until
from tests.cloud.testclient import TestClient


def test_settings_precedence_flag_over_env_over_default() -> None:
    env = {"FACTORY_DB_URL": "sqlite:///env.db", "FACTORY_INGEST_BATCH_SIZE": "7", "FACTORY_SHARE_GROUP": ""}
    settings = settings_from_environment(env, {"db_url": "sqlite:///flag.db"})
    assert settings.db_url == "sqlite:///flag.db"
    assert settings.ingest_batch_size == 7
    assert settings.share_group is None
    assert settings.api_port == 8000


def test_settings_reject_unknown_and_bad_values() -> None:
    with pytest.raises(ValueError, match="extra"):
        CloudSettings.model_validate({"db_ur": "x"})
    with pytest.raises(ValueError, match="scheme must be mqtt"):
        CloudSettings(broker_url="http://broker")
    with pytest.raises(ValueError, match="production profile: broker_username"):
        CloudSettings(
            profile="production", broker_url="mqtts://b", broker_username="cloud", broker_password="changeme"
        )
    with pytest.raises(ValueError, match="must use mqtts"):
        CloudSettings(profile="production", broker_username="cloud", broker_password="a-real-long-secret")
    ok = CloudSettings(
        profile="production", broker_url="mqtts://b", broker_username="c", broker_password="s3cr3t-x"
    )
    assert ok.broker.port == 8883
    assert ok.broker.tls


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
        wait_until(lambda: "results" in sa.inspect(engine).get_table_names(), what="migrated schema")
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


def test_celery_app_registers_retention_task_with_json_only() -> None:
    app = create_celery(CloudSettings(celery_broker_url="memory://"))
    assert RETENTION_TASK in app.tasks
    assert app.conf.accept_content == ["json"]
    assert "retention-daily" in app.conf.beat_schedule


@pytest.fixture
def api(db_url: str, topic_space: TopicSpace) -> Iterator[TestClient]:
    seed(db_url, topic_space)
    from cloud.api import create_app

    with TestClient(create_app(CloudSettings(db_url=db_url, topic_root=topic_space.root))) as client:
        yield client


def test_factoryctl_lists_gateways_and_results(api: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert factoryctl.main(["gateways", "list"], environ={}, client=api) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "LINE", "ONLINE", "AGENT_VERSION", "SESSION", "LAST_SEEN"]
    assert out[1].split()[:3] == ["gw-a", "line-1", "yes"]
    assert (
        factoryctl.main(
            ["--json", "results", "list", "--line", "line-2", "--limit", "2"], environ={}, client=api
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["seq"] for r in rows] == [5, 4]


def test_factoryctl_errors_exit_nonzero_with_message(
    api: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert factoryctl.main(["results", "list", "--limit", "0"], environ={}, client=api) == 1
    assert "--limit must be between 1 and 1000" in capsys.readouterr().err
    assert factoryctl.main(["--url", "http://127.0.0.1:1", "gateways", "list"], environ={}) == 1
    assert "cannot reach the API at http://127.0.0.1:1" in capsys.readouterr().err


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


def test_devices_show_says_a_refused_update_left_the_old_model_serving(
    db_url: str, topic_space: TopicSpace, api: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = {"name": "defect-cnn", "sha256": "ab" * 32}
    report = ReportedState(
        gateway_id="gw-a",
        desired_revision=2,
        slots={
            "defect": SlotReport(
                active=ModelRef(**ref, version="1.0.0"),
                phase="failed",
                target=ModelRef(**ref, version="1.1.0"),
                error="signature: key 2b1d889d is not trusted",
            )
        },
        timestamp=datetime.now(UTC),
    )
    engine = make_engine(db_url)
    ingest_messages(
        make_sessionmaker(engine), [inbound(topic_space, "gw-a", Channel.REPORTED, report)], topic_space
    )
    engine.dispose()
    assert factoryctl.main(["devices", "show", "gw-a"], environ={}, client=api) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("gw-a  line line-1  site -  tags -  online yes")
    assert out[1].startswith("machine: not reported")  # this gateway sent no birth
    header = next(i for i, line in enumerate(out) if line.split() == ["SLOT", "STATE"])
    assert out[header + 1] == (
        "defect  running 1.0.0 · last update 1.1.0 refused: signature: key 2b1d889d is not trusted"
    )


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
