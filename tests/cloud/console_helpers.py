"""Shared pieces of the console tests: a seeded database with users of every role and recent data."""

from __future__ import annotations

import base64
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
from protocol.messages import Box, DefectOutput
from protocol.topics import Channel, TopicSpace
from tests.cloud.helpers import batch, inbound, item, new_stream, state, telemetry
from tests.cloud.ota_helpers import make_release

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
