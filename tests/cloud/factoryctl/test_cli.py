"""factoryctl end to end against a live API (in-process TestClient on the real database)."""

from __future__ import annotations

import io
import json
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker
from cloud.factoryctl import cli as factoryctl
from cloud.factoryctl import push as push_module
from cloud.ingest.service import ingest_messages
from protocol.manifest import CARD_PROMPT_MARK
from protocol.messages import ModelRef
from protocol.ota import ReportedState, SlotReport
from protocol.signing import TrustStore, load_private_key, load_public_key
from protocol.topics import Channel, TopicSpace
from tests.support.database import seed
from tests.support.machines import GATEWAY_MACHINE
from tests.support.messages import inbound, state
from tests.support.releases import RecordingPublisher, Release, make_release
from tests.support.testclient import TestClient
from tests.support.tokens import mint_tokens


@pytest.fixture
def live(
    db_url: str, tmp_path: Path
) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str], RecordingPublisher]]:
    tokens = mint_tokens(db_url)
    publisher = RecordingPublisher()
    settings = CloudSettings(db_url=db_url, artifact_dir=str(tmp_path / "artifacts"))
    env = {"FACTORYCTL_CONFIG": str(tmp_path / "cfg" / "config.json"), "FACTORY_API_URL": "http://testserver"}
    with TestClient(create_app(settings, publisher)) as client:
        yield client, tokens, env, publisher


def ctl(client: TestClient, env: dict[str, str], *argv: str) -> int:
    return factoryctl.main(list(argv), environ=env, client=client)


def push(client: TestClient, env: dict[str, str], release: Release, key: Path, *flags: str) -> int:
    """``factoryctl models push`` of ``release``'s artifact and manifest, signed with ``key``."""
    files = (str(release.artifact), "--manifest", str(release.manifest_path))
    return ctl(client, env, "models", "push", *files, "--key", str(key), *flags)


def connect(db_url: str, gateways: list[str]) -> None:
    """Each of ``gateways`` sends its birth (a defect-cnn model in slot 'main'), as a real one would."""
    topics = TopicSpace()
    engine = make_engine(db_url)
    try:
        messages = [inbound(topics, gw, Channel.STATE, state(gw, True, 1)) for gw in gateways]
        ingest_messages(make_sessionmaker(engine), messages, topics)
    finally:
        engine.dispose()


def test_login_keys_push_show_and_rollout_from_the_command_line(
    live: tuple[TestClient, dict[str, str], dict[str, str], RecordingPublisher],
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, tokens, env, publisher = live
    assert ctl(client, env, "login", "--token", tokens["admin"]) == 0
    config = Path(env["FACTORYCTL_CONFIG"])
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text())["token"] == tokens["admin"]

    # The name given is the private key's; the public one sits beside it as <stem>.pub.pem.
    assert ctl(client, env, "keys", "generate", "--out", str(tmp_path / "keys" / "me.pem")) == 0
    private, public = tmp_path / "keys" / "me.pem", tmp_path / "keys" / "me.pub.pem"
    assert sorted(p.name for p in private.parent.iterdir()) == ["me.pem", "me.pub.pem"]
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert (
        load_public_key(public).public_bytes_raw()
        == load_private_key(private).public_key().public_bytes_raw()
    )
    assert (
        ctl(client, env, "keys", "generate", "--out", str(tmp_path / "keys" / "me.pem")) == 1
    )  # never overwrites
    assert ctl(client, env, "keys", "generate", "--out", str(tmp_path / "keys" / "bare")) == 0
    assert (tmp_path / "keys" / "bare.pem").exists()
    assert (tmp_path / "keys" / "bare.pub.pem").exists()
    capsys.readouterr()

    # A manifest with stale hashes: --fill computes sha256/size from the artifact.
    release = make_release(tmp_path / "rel", "1.0", Ed25519PrivateKey.generate())
    raw = json.loads(release.manifest_path.read_text())
    raw.update(sha256="00" * 32, size_bytes=1)
    release.manifest_path.write_text(json.dumps(raw))
    assert push(client, env, release, private) == 1
    assert "pass --fill" in capsys.readouterr().err
    assert push(client, env, release, private, "--fill") == 0
    captured = capsys.readouterr()
    assert "defect-cnn 1.0 pushed" in captured.out
    assert "100%" in captured.err
    assert push(client, env, release, private, "--fill") == 0
    assert "already registered (identical)" in capsys.readouterr().out

    # The signature the registry stores verifies with the engineer's public key.
    assert ctl(client, env, "--json", "models", "show", "defect-cnn", "1.0") == 0
    shown = json.loads(capsys.readouterr().out)
    from protocol.manifest import ModelManifest
    from protocol.signing import ManifestSignature

    TrustStore([load_public_key(public)]).verify(
        ModelManifest.model_validate(shown["manifest"]), ManifestSignature.model_validate(shown["signature"])
    )
    assert load_private_key(private)  # still readable

    # Same version, other bytes: refused with the conflict exit code.
    release.artifact.write_bytes(b"retrained weights" * 100)
    assert push(client, env, release, private, "--fill") == 5
    assert "versions are immutable" in capsys.readouterr().err

    assert ctl(client, env, "models", "list") == 0
    assert capsys.readouterr().out.split("\n")[1].split()[:3] == ["defect-cnn", "defect", "1.0"]

    connect(db_url, ["gw-1", "gw-2"])  # a rollout names gateways that connected (no --slot: 'main')

    assert (
        ctl(
            client,
            env,
            "--json",
            "rollouts",
            "create",
            "--model",
            "defect-cnn",
            "--version",
            "1.0",
            "--gateway",
            "gw-1",
            "--gateway",
            "gw-2",
            "--waves",
            "1,100%",
            "--bake",
            "0",
        )
        == 0
    )
    rollout = json.loads(capsys.readouterr().out)
    assert rollout["waves"] == [1, 2]
    assert rollout["state"] == "running"
    # Every view numbers waves from 1: the list says 1/2 like `status` does.
    assert ctl(client, env, "rollouts", "list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split()[4] == "WAVE"
    assert listed[1].split()[:5] == [rollout["id"], "defect-cnn", "1.0", "running", "1/2"]
    assert ctl(client, env, "rollouts", "status", rollout["id"]) == 0
    assert "wave 1/2" in capsys.readouterr().out
    assert ctl(client, env, "rollouts", "pause", rollout["id"], "--reason", "shift change") == 0
    assert "state PAUSED" in capsys.readouterr().out
    assert ctl(client, env, "rollouts", "pause", rollout["id"]) == 5
    assert "only a running one can pause" in capsys.readouterr().err
    assert ctl(client, env, "rollouts", "resume", rollout["id"]) == 0
    assert ctl(client, env, "rollouts", "abort", rollout["id"]) == 0
    capsys.readouterr()
    assert ctl(client, env, "rollouts", "status", rollout["id"], "--watch", "--interval", "0") == 6
    out = capsys.readouterr().out
    assert "state ABORTED" in out
    assert "aborted" in out
    assert publisher.published == []  # no wave had started: nothing to roll back

    assert ctl(client, env, "--json", "devices", "list") == 0
    assert [d["id"] for d in json.loads(capsys.readouterr().out)] == ["gw-1", "gw-2"]
    assert ctl(client, env, "devices", "show", "gw-unknown") == 4


def test_push_resumes_an_interrupted_upload(
    live: tuple[TestClient, dict[str, str], dict[str, str], RecordingPublisher],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, tokens, env, _ = live
    monkeypatch.setattr(push_module, "CHUNK_BYTES", 1000)
    key = tmp_path / "k.pem"
    assert ctl(client, env, "keys", "generate", "--out", str(key)) == 0
    release = make_release(
        tmp_path / "rel", "3.0", Ed25519PrivateKey.generate(), payload=bytes(range(256)) * 20
    )
    data = release.artifact.read_bytes()
    client.headers["Authorization"] = f"Bearer {tokens['admin']}"
    # A previous push died after its first chunk.
    first = client.put(
        f"/api/v1/blobs/{release.manifest.sha256}",
        params={"size": len(data), "offset": 0},
        content=data[:1000],
    )
    assert first.json()["received_bytes"] == 1000
    offsets: list[str] = []

    def record(request: httpx.Request) -> None:
        if request.method == "PUT":
            offsets.append(request.url.params["offset"])

    client.event_hooks["request"].append(record)
    env = {**env, "FACTORY_API_TOKEN": tokens["admin"]}
    assert push(client, env, release, key) == 0
    assert offsets == ["1000", "2000", "3000", "4000", "5000"]


def test_errors_say_what_to_do_and_exit_with_meaningful_codes(
    live: tuple[TestClient, dict[str, str], dict[str, str], RecordingPublisher],
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, tokens, env, _ = live
    assert ctl(client, env, "login", "--token", "fe_wrong") == 3
    assert "factoryctl login" in capsys.readouterr().err
    viewer = {**env, "FACTORY_API_TOKEN": tokens["viewer"]}
    assert ctl(client, viewer, "rollouts", "create", "--model", "m", "--version", "1", "--gateway", "g") == 3
    assert "ask an admin" in capsys.readouterr().err
    assert ctl(client, viewer, "models", "show", "nothing") == 4
    assert ctl(client, env, "models", "push", "x.onnx", "--manifest", "m.json") == 1
    assert "factoryctl keys generate" in capsys.readouterr().err


def test_a_rollout_without_a_target_says_how_to_give_one(
    live: tuple[TestClient, dict[str, str], dict[str, str], RecordingPublisher],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, tokens, env, _ = live
    env = {**env, "FACTORY_API_TOKEN": tokens["admin"]}
    key = tmp_path / "k.pem"
    assert ctl(client, env, "keys", "generate", "--out", str(key)) == 0
    release = make_release(tmp_path / "rel", "1.1.0", Ed25519PrivateKey.generate())
    push_args = ("models", "push", str(release.artifact), "--manifest", str(release.manifest_path))
    assert ctl(client, env, *push_args, "--key", str(key)) == 0
    capsys.readouterr()
    create = ("rollouts", "create", "--model", "defect-cnn", "--version", "1.1.0", "--waves", "1,100%")
    assert ctl(client, env, *create) == 2
    assert "no target: give --gateway, --line, --site, --tag or --cpu-class" in capsys.readouterr().err
    assert ctl(client, env, *create, "--line", "line-9") == 1
    err = capsys.readouterr().err
    assert "the target matches no gateway" in err
    assert "give --gateway, --line, --site, --tag or --cpu-class" in err


def test_output_into_a_closed_pipe_exits_quietly(
    live: tuple[TestClient, dict[str, str], dict[str, str], RecordingPublisher],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, _, env, _ = live

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert ctl(client, env, "models", "list") == factoryctl.EXIT_PIPE
    assert capsys.readouterr().err == ""  # no traceback, no message


@dataclass
class Pushing:
    """An admin's factoryctl environment, a signing key and a release ready to push."""

    client: TestClient
    env: dict[str, str]
    viewer: dict[str, str]
    release: Any
    card: Path

    def push(self, *extra: str, manifest: Path | None = None) -> int:
        manifest = manifest or self.release.manifest_path
        key = str(self.card.parent / "k.pem")
        argv = ("models", "push", str(self.release.artifact), "--manifest", str(manifest), "--key", key)
        return ctl(self.client, self.env, *argv, *extra)


@pytest.fixture
def pushing(
    live: tuple[TestClient, dict[str, str], dict[str, str], RecordingPublisher], tmp_path: Path
) -> Pushing:
    client, tokens, env, _ = live
    admin = {**env, "FACTORY_API_TOKEN": tokens["admin"]}
    assert ctl(client, admin, "keys", "generate", "--out", str(tmp_path / "k.pem")) == 0
    release = make_release(tmp_path / "rel", "1.1.0", Ed25519PrivateKey.generate())
    viewer = {**env, "FACTORY_API_TOKEN": tokens["viewer"]}
    return Pushing(client, admin, viewer, release, tmp_path / "MODEL_CARD.md")


def test_push_names_a_mistyped_path_and_what_the_folder_holds(
    pushing: Pushing, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = pushing.release.manifest_path.with_name("defect-cnn-1.1.O.manifest.json")
    assert pushing.push(manifest=typo) == 1
    err = capsys.readouterr().err
    assert f"manifest {typo} not found" in err
    assert pushing.release.manifest_path.name in err  # what is there instead
    assert "Errno" not in err


def test_push_refuses_a_card_with_prompts_left_and_uploads_nothing(
    pushing: Pushing, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pushing.card.write_text(f"# card\n\n## To fill in\n\n- What the parts are. {CARD_PROMPT_MARK}\n")
    uploads: list[str] = []
    real_upload = push_module.upload_blob
    monkeypatch.setattr(
        push_module, "upload_blob", lambda c, p, *a, **k: (uploads.append(p.name), real_upload(c, p, *a, **k))
    )
    assert pushing.push("--card", str(pushing.card)) == 2
    assert "1 line(s) still marked '(to fill in)'" in capsys.readouterr().err
    assert uploads == []
    assert ctl(pushing.client, pushing.viewer, "models", "show", "defect-cnn") == 4  # nothing registered
    pushing.card.write_text("# card\n\n## About\n\n- Brackets from press 4.\n")
    assert pushing.push("--card", str(pushing.card)) == 0
    assert uploads  # the filled card went up with the files


def test_pushing_an_existing_version_again_answers_without_uploading(
    pushing: Pushing, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pushing.card.write_text("# card\n\nBrackets from press 4.\n")
    assert pushing.push("--card", str(pushing.card)) == 0
    uploads: list[str] = []
    monkeypatch.setattr(push_module, "upload_blob", lambda c, p, *a, **k: uploads.append(p.name))
    capsys.readouterr()
    assert pushing.push("--card", str(pushing.card)) == 0
    assert "already registered (identical)" in capsys.readouterr().out
    pushing.card.write_text("# card\n\nBrackets from press 5.\n")
    assert pushing.push("--card", str(pushing.card)) != 0
    assert "different model card" in capsys.readouterr().err
    assert uploads == []


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
    assert out[1] == f"machine: {GATEWAY_MACHINE.cpu_model} ({GATEWAY_MACHINE.arch})"  # from its birth
    header = next(i for i, line in enumerate(out) if line.split() == ["SLOT", "STATE"])
    assert out[header + 1] == (
        "defect  running 1.0.0 · last update 1.1.0 refused: signature: key 2b1d889d is not trusted"
    )


def test_devices_set_moves_a_gateway_to_another_line_as_an_admin(
    db_url: str, api: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens = mint_tokens(db_url)
    move = ["devices", "set", "gw-a", "--line", "line-9", "--tag", "north", "--tag", "press"]
    assert factoryctl.main(move, environ={"FACTORY_API_TOKEN": tokens["operator"]}, client=api) == 3
    assert "admin" in capsys.readouterr().err
    assert factoryctl.main(move, environ={"FACTORY_API_TOKEN": tokens["admin"]}, client=api) == 0
    assert capsys.readouterr().out.split()[-3:] == ["line-9", "-", "north,press"]
    assert api.get("/api/v1/gateways/gw-a").json()["line"] == "line-9"
    assert (
        factoryctl.main(
            ["devices", "set", "gw-a"], environ={"FACTORY_API_TOKEN": tokens["admin"]}, client=api
        )
        == 2
    )
    assert "needs --line, --site or --tag" in capsys.readouterr().err
