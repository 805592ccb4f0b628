"""Defect thumbnails: from a real agent through Mosquitto into the database, served as JPEG."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.api import create_app
from cloud.config import CloudSettings
from cloud.db.models import Result, Thumbnail
from cloud.ingest.service import ingest_messages
from cloud.ingest.worker import IngestWorker
from cloud.retention import purge_older_than
from cloud.thumbnails import crop_geometry, trim_per_line
from edge_agent.agent import Agent
from edge_agent.thumbnails import ThumbnailConfig, encode_thumbnail
from protocol.messages import Box, DefectOutput, ParcelOutput, ResultItem
from protocol.topics import Channel, TopicSpace
from tests.support.agent import agent_config, build_model, write_frames
from tests.support.messages import T0, batch, inbound, item, new_stream
from tests.support.releases import RecordingPublisher
from tests.support.testclient import TestClient
from tests.support.waiting import wait_for

BRIGHT, DARK = 240, 10


def _count(sessions: sessionmaker[Session], model: type[Result] | type[Thumbnail]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_agent_thumbnails_land_in_the_db_within_the_rate_limit_and_are_served_as_jpeg(
    tmp_path: Path,
    mosquitto: tuple[str, int],
    topic_space: TopicSpace,
    cloud_settings: CloudSettings,
    start_worker: Callable[..., IngestWorker],
    sessions: sessionmaker[Session],
) -> None:
    # 40 frames, 32 defective: the default limit (30 a minute per slot) lets 30 carry a picture.
    values = [DARK if i % 5 == 0 else BRIGHT for i in range(40)]
    write_frames(tmp_path / "frames", values, size=(64, 48))
    manifest = build_model(tmp_path / "model")
    start_worker()
    agent = Agent(agent_config(tmp_path, mosquitto, topic_space, manifest, tmp_path / "frames"))
    try:
        agent.start()
        wait_for(lambda: _count(sessions, Result) == 40, 30, "all 40 results in the database")
        wait_for(lambda: agent.outbox.stats() == (0, 0), 10, "the outbox to empty")
    finally:
        agent.stop()
    assert _count(sessions, Thumbnail) == 30
    assert sum(w.thumbnailer.skipped for w in agent.workers) == 2

    with TestClient(create_app(cloud_settings, RecordingPublisher())) as client:
        defects = client.get("/api/v1/lines/line-1/defects?limit=100").json()
        assert len(defects) == 32
        assert [d["captured_at"] for d in defects] == sorted(
            (d["captured_at"] for d in defects), reverse=True
        )
        with_picture = [d for d in defects if d["has_thumbnail"]]
        assert len(with_picture) == 30
        first = with_picture[0]
        assert (first["gateway_id"], first["label"], first["model_name"]) == (
            "gw-test",
            "scratch",
            "tiny-defect",
        )
        assert first["crop"] == {
            "x": 0,
            "y": 0,
            "w": 64,
            "h": 48,
            "frame_w": 64,
            "frame_h": 48,
            "tw": 64,
            "th": 48,
        }
        resp = client.get(first["thumbnail_url"])
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "image/jpeg"
        picture = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_COLOR)
        assert picture is not None, "the thumbnail must decode as an image"
        assert picture.shape == (48, 64, 3)
        assert abs(float(picture.mean()) - BRIGHT) < 8, "the thumbnail shows the frame"
        missing = next(d for d in defects if not d["has_thumbnail"])
        assert missing["thumbnail_url"] is None
        assert client.get(f"/api/v1/results/{missing['id']}/thumbnail").status_code == 404
        assert client.get(f"/api/v1/results/{uuid.uuid4()}/thumbnail").status_code == 404


def _with_thumbnail(
    seq: int, jpeg_b64: str | None, box: Box | None = None, line: str = "line-1"
) -> ResultItem:
    it = item(seq, line=line, at=T0 + timedelta(minutes=seq), defect=True)
    out = it.output
    assert isinstance(out, DefectOutput)
    return it.model_copy(update={"thumbnail_jpeg": jpeg_b64, "output": out.model_copy(update={"box": box})})


def test_box_and_crop_geometry_let_the_console_place_the_box_on_the_picture(
    sessions: sessionmaker[Session], topic_space: TopicSpace, cloud_settings: CloudSettings
) -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    box = Box(x=300, y=200, w=40, h=30)
    jpeg = encode_thumbnail(frame, box, ThumbnailConfig(margin=0.5))
    assert jpeg is not None
    items = [_with_thumbnail(1, base64.b64encode(jpeg).decode(), box)]
    ingest_messages(
        sessions,
        [inbound(topic_space, "gw-a", Channel.RESULTS, batch("gw-a", new_stream(), items))],
        topic_space,
    )
    with TestClient(create_app(cloud_settings, RecordingPublisher())) as client:
        [defect] = client.get("/api/v1/lines/line-1/defects").json()
    assert defect["box"] == {"x": 300, "y": 200, "w": 40, "h": 30}
    assert defect["crop"] == crop_geometry(jpeg)
    assert defect["crop"]["x"] == 280  # box + 50% of its width
    assert defect["crop"]["frame_w"] == 640
    # The whole output rides along, so the console can say what the score means.
    assert defect["output"] == items[0].output.model_dump(mode="json")


def test_a_broken_thumbnail_is_dropped_but_its_result_is_kept(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    items = [
        _with_thumbnail(1, base64.b64encode(b"not a jpeg at all").decode()),
        _with_thumbnail(2, "!!!not-base64!!!"),
        _with_thumbnail(3, base64.b64encode(b"\xff\xd8 tiny but well-formed \xff\xd9").decode()),
    ]
    outcome, _ = ingest_messages(
        sessions,
        [inbound(topic_space, "gw-a", Channel.RESULTS, batch("gw-a", new_stream(), items))],
        topic_space,
    )
    assert outcome.results_inserted == 3
    assert not outcome.rejected
    with sessions() as session:
        stored = session.scalars(select(Thumbnail)).all()
    assert [t.size_bytes for t in stored] == [len(b"\xff\xd8 tiny but well-formed \xff\xd9")]
    assert stored[0].crop is None, "no geometry comment: the console shows the picture without a box"


def test_retention_keeps_the_newest_per_line_and_deletes_thumbnails_with_their_results(
    sessions: sessionmaker[Session], topic_space: TopicSpace
) -> None:
    jpeg = encode_thumbnail(np.zeros((48, 64, 3), np.uint8), None, ThumbnailConfig())
    assert jpeg is not None
    b64 = base64.b64encode(jpeg).decode()
    line1 = [_with_thumbnail(s, b64) for s in range(1, 11)]
    line2 = [_with_thumbnail(s, b64, line="line-2") for s in range(11, 14)]
    # Two gateways: a gateway's results are stored under the one line it is on.
    ingest_messages(
        sessions,
        [
            inbound(topic_space, "gw-a", Channel.RESULTS, batch("gw-a", new_stream(), line1)),
            inbound(topic_space, "gw-b", Channel.RESULTS, batch("gw-b", new_stream(), line2)),
        ],
        topic_space,
    )
    with sessions.begin() as session:
        assert trim_per_line(session, keep=4) == 6
    with sessions() as session:
        kept = session.execute(
            select(Thumbnail.line, Thumbnail.captured_at).order_by(Thumbnail.captured_at)
        ).all()
    kept_line1 = [at for line, at in kept if line == "line-1"]
    assert kept_line1 == [T0 + timedelta(minutes=m) for m in (7, 8, 9, 10)]
    assert sum(line == "line-2" for line, _ in kept) == 3

    # Age retention deletes results; their thumbnails go with them.
    purge_older_than(sessions, 1, now=T0 + timedelta(days=1, minutes=9, seconds=30))
    assert _count(sessions, Thumbnail) == 4  # line-1 minute 10 and line-2 minutes 11-13


def test_damaged_parcels_are_listed_with_defects_and_good_items_are_not(
    sessions: sessionmaker[Session], topic_space: TopicSpace, cloud_settings: CloudSettings
) -> None:
    good = item(1, at=T0)
    box = Box(x=5, y=6, w=7, h=8)
    parcel = item(2, at=T0 + timedelta(seconds=2)).model_copy(
        update={"output": ParcelOutput(label="reject", score=0.8, track_id=4, box=box, damaged=True)}
    )
    intact = item(3, at=T0 + timedelta(seconds=3)).model_copy(
        update={"output": ParcelOutput(label="lane-1", score=0.8, track_id=5)}
    )
    defect = item(4, at=T0 + timedelta(seconds=4), defect=True)
    batch_ = batch("gw-a", new_stream(), [good, parcel, intact, defect])
    ingest_messages(sessions, [inbound(topic_space, "gw-a", Channel.RESULTS, batch_)], topic_space)
    with TestClient(create_app(cloud_settings, RecordingPublisher())) as client:
        listed = client.get("/api/v1/lines/line-1/defects").json()
        assert [d["id"] for d in listed] == [str(defect.id), str(parcel.id)]
        assert listed[1]["box"] == {"x": 5, "y": 6, "w": 7, "h": 8}
        assert [d["id"] for d in client.get("/api/v1/lines/line-1/defects?limit=1").json()] == [
            str(defect.id)
        ]
        assert client.get("/api/v1/lines/nowhere/defects").json() == []
