"""What ``factory-sim demo`` prints once it runs: where each piece is and the exact commands to
talk to it (with this demo's URL, token, key and database, so they work when pasted)."""

from __future__ import annotations

import shutil
from pathlib import Path

from simulators.fleet import VirtualGateway
from simulators.net import console_script

# Console users of the demo, one per role; the banner prints them (never used outside the demo profile).
DEMO_USERS = {"admin": "admin", "operator": "operator", "viewer": "viewer"}
DEMO_PASSWORD = "factory-demo"  # noqa: S105 - demo profile only, printed on purpose


def _script(name: str) -> str:
    """How to type one of our console scripts from here: `.venv/bin/factoryctl` when the venv is
    not activated (``make demo`` does not put it on PATH), the bare name when it is on PATH."""
    path = Path(console_script(name))
    if shutil.which(name) == str(path):
        return name
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def banner(
    broker_url: str,
    api_url: str,
    db_url: str,
    gateways: list[VirtualGateway],
    workdir: Path,
    admin_token: str,
    control_url: str | None = None,
    look_change: str | None = None,
) -> str:
    """The banner; ``control_url``: the demo's control endpoint (line looks), ``look_change``: the
    scheduled look change in words."""
    ctl, cloud = _script("factoryctl"), _script("factory-cloud")
    key = workdir / "keys" / "demo-signing.pem"
    rows = [
        "",
        "factory-edge demo is running (embedded profile: no TLS, reads need no token - not for production)",
        f"  console / API   {api_url}   (OpenAPI docs: {api_url}/docs)",
        f"  MQTT broker     {broker_url}",
        f"  database        {db_url}",
        f"  console login   {', '.join(DEMO_USERS)} (password {DEMO_PASSWORD}) at {api_url}/",
        f"  admin token     {admin_token}",
        f"                  {ctl} login --url {api_url} --token {admin_token}",
        f"  signing key     {key} (the gateways trust its public key;",
        f"                  sign pushes with: {ctl} models push MODEL.onnx --manifest M --key {key})",
        "  more tokens     (always name this demo's database, or a new empty one is made elsewhere)",
        f"                  {cloud} tokens create --role viewer --db {db_url}",
        f"                  FACTORY_NEW_PASSWORD=... {cloud} users create NAME --role operator --db {db_url}",
    ]
    for gw in gateways:
        rows.append(
            f"  gateway {gw.gateway_id:<8}{gw.line:<8}{gw.kind:<11}camera http://127.0.0.1:{gw.camera_port}/stream.mjpg"
            f"   agent health http://127.0.0.1:{gw.http_port}/healthz"
        )
    if control_url is not None:
        sim = _script("factory-sim")
        rows.append(
            f"  line looks      {sim} lines show | {sim} lines set LINE --look LOOK  (control {control_url})"
        )
    if look_change is not None:
        rows.append(f"  look change     {look_change} (--change-look-after)")
    rows += [
        f"  logs            {workdir / 'logs'} and {workdir / 'gateways'}/<gateway>/*.log",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(rows)
