"""Gateway tokens: minted on the server or by an admin, bound to one gateway, good for that
gateway's capture uploads and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.cli import main
from protocol.topics import TopicSpace
from tests.support.captures import CaptureCloud, capture_cloud
from tests.support.tokens import bearer

UNKNOWN_FILE = "/api/v1/captures/files/" + "0" * 64 + "/status"


@pytest.fixture
def cloud(db_url: str, topic_space: TopicSpace, tmp_path: Path) -> Iterator[CaptureCloud]:
    with capture_cloud(db_url, topic_space, tmp_path) as running:
        yield running


def test_the_server_mints_a_gateway_token_that_opens_uploads_only(
    cloud: CaptureCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["tokens", "create", "--role", "gateway", "--gateway", "gw-a", "--db", cloud.db_url], environ={})
        == 0
    )
    token = capsys.readouterr().out.strip()
    assert token.startswith("fe_")
    assert cloud.client.get(UNKNOWN_FILE, headers=bearer(token)).status_code == 404  # let in; nothing there
    refused = cloud.client.get("/api/v1/gateways", headers=bearer(token))
    assert refused.status_code == 403
    assert refused.json()["detail"].endswith("is gateway")
    assert cloud.client.get(UNKNOWN_FILE, headers=cloud.headers("operator")).status_code == 403
    assert cloud.client.get(UNKNOWN_FILE, headers=cloud.headers("admin")).status_code == 404
    [entry] = cloud.call(
        "GET", "/audit", "admin", 200, params={"action": "token.create", "actor": "cli:factory-cloud"}
    )
    assert (entry["target"], entry["details"]["gateway_id"]) == ("gateway:gw-a", "gw-a")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--role", "gateway"], "--role gateway needs --gateway ID"),
        (["--role", "admin", "--gateway", "gw-a"], "--gateway is for gateway tokens"),
        (["--role", "gateway", "--gateway", "gw/1"], "gateway id 'gw/1' must match"),
    ],
)
def test_a_gateway_token_asked_for_wrongly_is_refused_naming_why(
    cloud: CaptureCloud, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["tokens", "create", *argv, "--db", cloud.db_url], environ={}) == 1
    printed = capsys.readouterr()
    assert printed.out == ""
    assert message in printed.err


def test_admins_mint_gateway_tokens_through_the_api(cloud: CaptureCloud) -> None:
    missing = cloud.call("POST", "/tokens", "admin", 422, json={"name": "edge", "role": "gateway"})
    assert "role gateway needs gateway_id" in missing["detail"]
    made = cloud.call(
        "POST", "/tokens", "admin", 201, json={"name": "edge", "role": "gateway", "gateway_id": "gw-b"}
    )
    assert (made["role"], made["gateway_id"]) == ("gateway", "gw-b")
    assert cloud.client.get(UNKNOWN_FILE, headers=bearer(made["token"])).status_code == 404
    listed = {t["name"]: t["gateway_id"] for t in cloud.call("GET", "/tokens", "admin", 200)}
    assert listed["edge"] == "gw-b"
    assert listed["test-admin"] is None
