"""The console for its tests: a seeded database with users of every role and recent data, logging in,
the console's pages, and more data to feed it (parcels, gateway messages)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.auth.service import Role, create_user
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.ingest.service import ingest_messages
from cloud.registry.service import create_version, put_chunk
from cloud.registry.store import LocalStore
from protocol.inference import normalized_score
from protocol.messages import Box, DefectOutput, ParcelOutput, ResultItem, WireModel
from protocol.topics import Channel, TopicSpace
from tests.support.messages import batch, inbound, item, new_stream, note, state, telemetry
from tests.support.releases import make_release
from tests.support.testclient import TestClient

PASSWORD = "console-pass-1"  # noqa: S105 - test users only
USERS = {"vera": Role.viewer, "otto": Role.operator, "ada": Role.admin}
CARD = "# defect-cnn\n\nHeld-out accuracy **0.97**.\n\n<script>alert('card')</script>\n"


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed_console` put in the database."""

    thumbnail_result: str
    defect_labels: dict[str, int]


def _jpeg() -> str:
    image = np.full((48, 64, 3), 90, dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def seed_console(settings: CloudSettings, topics: TopicSpace, key: Ed25519PrivateKey, folder: Path) -> Seeded:
    """Users of each role, two lines with results of the last minutes, one thumbnail, one model version."""
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    now = datetime.now(UTC)
    stream = new_stream()
    labels = ["scratch", "dent", "scratch", "ok", "ok", "ok"]
    items = [
        item(s, at=now - timedelta(minutes=10 - s), defect=lab != "ok", label=lab)
        for s, lab in enumerate(labels, start=1)
    ]
    flagged = items[0].model_copy(
        update={
            "thumbnail_jpeg": _jpeg(),
            "output": DefectOutput(label="scratch", is_defect=True, score=0.9, box=Box(x=4, y=4, w=20, h=10)),
        }
    )
    items[0] = flagged
    other = [item(s, line="line-2", at=now - timedelta(minutes=5)) for s in range(1, 3)]
    release = make_release(folder, "1.0", key)
    try:
        sessions = make_sessionmaker(engine)
        ingest_messages(
            sessions,
            [
                inbound(topics, "gw-a", Channel.STATE, state("gw-a", True, 1)),
                inbound(topics, "gw-a", Channel.TELEMETRY, telemetry("gw-a")),
                inbound(topics, "gw-a", Channel.RESULTS, batch("gw-a", stream, items)),
                inbound(topics, "gw-b", Channel.STATE, state("gw-b", False, 2, line="line-2")),
                inbound(topics, "gw-b", Channel.RESULTS, batch("gw-b", stream, other)),
            ],
            topics,
        )
        with sessions.begin() as session:
            for name, role in USERS.items():
                create_user(session, name, PASSWORD, role)
            data = release.artifact.read_bytes()
            store = LocalStore(Path(settings.artifact_dir))
            put_chunk(session, store, release.manifest.sha256, len(data), 0, data)
            create_version(session, settings, release.manifest, release.signature, CARD, "test")
    finally:
        engine.dispose()
    return Seeded(thumbnail_result=str(flagged.id), defect_labels={"scratch": 2, "dent": 1})


ORIGIN = {"Origin": "http://testserver"}


PAGES = [
    "/",
    "/lines/line-1",
    "/lines/line-1/notes",
    "/gateways",
    "/gateways/gw-a",
    "/models",
    "/rollouts",
    "/alerts",
]


def login(client: TestClient, user: str) -> None:
    client.cookies.clear()
    answer = client.post(
        "/login",
        data={"username": user, "password": PASSWORD, "next": "/"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def create_rollout(client: TestClient) -> str:
    form = {"model_name": "defect-cnn", "version": "1.0", "gateways": "gw-a", "waves": "100%", "bake_s": "0"}
    answer = client.post("/rollouts", data=form, headers=ORIGIN, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    rollouts = client.get(
        "/api/v1/rollouts", headers={"Authorization": f"Bearer {client.cookies['fe_console']}"}
    )
    return str(rollouts.json()[0]["id"])


def anomaly_result(seq: int, raw: float, threshold: float, at: datetime | None = None) -> ResultItem:
    """A result of gw-a's anomaly model on line-1, as ``edge_agent.runtime.anomaly`` reports one."""
    squashed = round(normalized_score(raw, threshold), 6)
    flagged = raw >= threshold
    out = DefectOutput(label="anomaly" if flagged else "good", is_defect=flagged,
                       score=squashed if flagged else round(1 - squashed, 6),
                       scores={"anomaly": squashed, "good": round(1 - squashed, 6)},
                       box=Box(x=4, y=4, w=20, h=10) if flagged else None, raw_score=raw, threshold=threshold)  # fmt: skip
    found = item(seq, at=at or datetime.now(UTC), model="defect-patchcore")
    return found.model_copy(update={"output": out, **({"thumbnail_jpeg": _jpeg()} if flagged else {})})


PARCEL_BARCODE = "3104729"  # what the damaged parcel's label reads


def parcel(seq: int, at: datetime, lane: str, damaged: bool) -> ResultItem:
    """A parcel counted on line-3: its label is the sort lane; damaged ones carry a picture, and
    their label was read (barcode ``PARCEL_BARCODE``)."""
    out = ParcelOutput(label=lane, score=0.99, track_id=seq, damaged=damaged, box=Box(x=4, y=4, w=20, h=10),
                       barcode=PARCEL_BARCODE if damaged else None, symbology="code128" if damaged else None,
                       damage_score=0.71 if damaged else 0.05, damage_threshold=0.44)  # fmt: skip
    extra = {"thumbnail_jpeg": _jpeg()} if damaged else {}
    return item(seq, line="line-3", at=at, model="parcel-det").model_copy(update={"output": out, **extra})


def seed_parcels(console: Console) -> None:
    """line-3: 4 parcels in the last minutes (lanes a, a, b, and one damaged to reject)."""
    now = datetime.now(UTC)
    plan = [("a", False), ("a", False), ("b", False), ("reject", True)]
    items = [parcel(s, now - timedelta(minutes=6 - s), lane, hurt) for s, (lane, hurt) in enumerate(plan, 1)]
    console.ingest("gw-p", Channel.STATE, state("gw-p", True, 1, line="line-3"))
    console.ingest("gw-p", Channel.RESULTS, batch("gw-p", new_stream(), items))


# line-1's maintenance notes in the console tests: (minutes ago, text, category, urgency).
CONSOLE_NOTES = (
    (9, "Chain guard <b>loose</b> & rattling", "mechanical", "low"),
    (7, "Sparks at drive 4 - isolate now", "electrical", "high"),
    (5, "Air leak at valve block V2", "hydraulic_pneumatic", "medium"),
    (3, "Emergency stop on cell 2 does not latch", "safety", "high"),
)


def seed_notes(ingest: Callable[[str, Channel, WireModel], None]) -> list[ResultItem]:
    """gw-a writes :data:`CONSOLE_NOTES` on line-1 beside its camera; returns them, oldest first."""
    now = datetime.now(UTC)
    notes = [
        note(s, text, at=now - timedelta(minutes=ago), category=category, urgency=urgency)
        for s, (ago, text, category, urgency) in enumerate(CONSOLE_NOTES, start=1)
    ]
    ingest("gw-a", Channel.RESULTS, batch("gw-a", new_stream(), notes))
    return notes


@dataclass
class Console:
    """The console over a database seeded by :func:`seed_console` (gw-a on line-1, gw-b on line-2,
    defect-cnn 1.0), and ways to feed it more gateway messages and read its tables."""

    client: TestClient
    settings: CloudSettings
    topics: TopicSpace
    folder: Path
    seeded: Seeded

    @property
    def db_url(self) -> str:
        return self.settings.db_url

    def ingest(self, gateway_id: str, channel: Channel, *messages: WireModel) -> None:
        engine = make_engine(self.settings.db_url)
        try:
            found = [inbound(self.topics, gateway_id, channel, m) for m in messages]
            ingest_messages(make_sessionmaker(engine), found, self.topics)
        finally:
            engine.dispose()

    def table(self, path: str, table_id: str) -> str:
        page = self.client.get(path).text
        found = re.search(rf'<table[^>]*id="{table_id}">.*?</table>', page, re.S)
        assert found is not None, f"no table {table_id!r} on {path}"
        return found.group(0)
