"""Thumbnails of flagged items: a small JPEG crop of the whole part or parcel, geometry inside,
rate-limited."""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edge_agent.config import ConfigError, parse_config
from edge_agent.frames import Frame
from edge_agent.runtime.model import ModelRunner
from edge_agent.runtime.parcels import ParcelRunner
from edge_agent.thumbnails import (
    RateLimiter,
    ThumbnailConfig,
    Thumbnailer,
    crop_rect,
    encode_thumbnail,
)
from protocol.messages import (
    CROP_COMMENT_PREFIX,
    MAX_THUMBNAIL_B64,
    Box,
    ClassificationOutput,
    DefectOutput,
    ParcelOutput,
    utcnow,
)
from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.defects import Box as SimBox
from simulators.fleet import bundled_manifest
from simulators.parcel_line import ParcelLine, ParcelLineConfig


def _geometry(jpeg: bytes) -> dict[str, int]:
    assert jpeg[2:4] == b"\xff\xfe", "the geometry comment must follow SOI"
    (length,) = struct.unpack(">H", jpeg[4:6])
    body = jpeg[6 : 4 + length]
    assert body.startswith(CROP_COMMENT_PREFIX)
    return json.loads(body[len(CROP_COMMENT_PREFIX) :])  # type: ignore[no-any-return]


def _frame(w: int = 640, h: int = 480) -> np.ndarray:
    image = np.full((h, w, 3), 40, dtype=np.uint8)
    cv2.rectangle(image, (300, 200), (340, 230), (255, 255, 255), -1)  # the "defect"
    return image


def test_crop_surrounds_its_subject_is_small_and_says_where_it_came_from() -> None:
    box = Box(x=300, y=200, w=40, h=30)
    jpeg = encode_thumbnail(_frame(), box, ThumbnailConfig(margin=0.5))
    assert jpeg is not None
    geo = _geometry(jpeg)
    assert (geo["x"], geo["y"], geo["w"], geo["h"]) == (280, 185, 80, 60)  # box + 50 % per side
    assert (geo["frame_w"], geo["frame_h"]) == (640, 480)
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None, "the thumbnail must decode as an image"
    assert picture.shape[1::-1] == (geo["tw"], geo["th"])
    assert max(picture.shape[:2]) <= 160
    # The box, mapped by the geometry, is bright in the picture and its surroundings are dark.
    sx = geo["tw"] / geo["w"]
    cx = int((box.x + box.w / 2 - geo["x"]) * sx)
    cy = int((box.y + box.h / 2 - geo["y"]) * sx)
    assert picture[cy, cx].mean() > 200
    assert picture[2, 2].mean() < 80


def test_without_a_box_the_whole_frame_is_scaled_to_the_max_side() -> None:
    jpeg = encode_thumbnail(_frame(), None, ThumbnailConfig(max_side=120))
    assert jpeg is not None
    geo = _geometry(jpeg)
    assert (geo["x"], geo["y"], geo["w"], geo["h"]) == (0, 0, 640, 480)
    assert (geo["tw"], geo["th"]) == (120, 90)


def test_box_at_the_edge_is_clipped_to_the_frame() -> None:
    assert crop_rect(Box(x=0, y=0, w=10, h=10), 100, 50, 1.0) == (0, 0, 20, 20)
    assert crop_rect(Box(x=95, y=45, w=10, h=10), 100, 50, 0.5) == (90, 40, 10, 10)
    assert crop_rect(Box(x=500, y=500, w=10, h=10), 100, 50, 0.5) == (0, 0, 100, 50)


def _crop_of(b64: str | None) -> tuple[int, int, int, int]:
    assert b64 is not None, "a flagged result must get its picture"
    geo = _geometry(base64.b64decode(b64))
    return geo["x"], geo["y"], geo["w"], geo["h"]


def _holds(crop: tuple[int, int, int, int], box: SimBox | Box) -> bool:
    x, y, w, h = crop
    return x <= box.x and y <= box.y and box.x + box.w <= x + w and box.y + box.h <= y + h


@pytest.mark.parametrize("belt", ["ribbed", "mesh"])
def test_a_defect_picture_shows_the_whole_part_it_is_on_not_a_corner_of_it(belt: str) -> None:
    line = CameraLine(CameraLineConfig(seed=21, defect_rate=1.0, belt=belt))  # type: ignore[arg-type]
    maker = Thumbnailer(ThumbnailConfig(max_per_minute=1000))
    for index in range(24):
        frame = line.frame(index)
        part, flaw = frame.truth.part_box, frame.truth.box
        assert part is not None
        assert flaw is not None
        box = Box(x=flaw.x, y=flaw.y, w=flaw.w, h=flaw.h)
        defect = DefectOutput(label="scratch", is_defect=True, score=0.9, box=box)
        crop = _crop_of(maker.for_result(defect, frame.image))
        assert _holds(crop, part), f"frame {index}: crop {crop} cuts the part {part}"
        assert _holds(crop, box), f"frame {index}: crop {crop} loses the defect box {box}"
        # The part, not the whole frame: a picture of everything would hold the part too.
        height, width = frame.image.shape[:2]
        assert crop[2] * crop[3] < 0.75 * width * height, f"frame {index}: {crop}"


def test_the_bundled_anomaly_models_defects_are_pictured_on_their_whole_part() -> None:
    """What gw-1 of the demo does: PatchCore on the camera line, its box, then the picture."""
    runner = ModelRunner(bundled_manifest("anomaly"), slot="defect")
    maker = Thumbnailer(ThumbnailConfig(max_per_minute=1000))
    line = CameraLine(CameraLineConfig(seed=424242, defect_rate=1.0))  # a seed the model never saw
    frames = [line.frame(i) for i in range(16)]
    predictions = runner.infer([Frame("cam", str(f.index), utcnow(), f.image) for f in frames])
    flagged = 0
    for frame, prediction in zip(frames, predictions, strict=True):
        output = prediction.output
        assert isinstance(output, DefectOutput)
        if not output.is_defect:
            continue
        flagged += 1
        part = frame.truth.part_box
        assert part is not None
        crop = _crop_of(maker.for_result(output, frame.image))
        centre = Box(x=part.x + part.w // 2, y=part.y + part.h // 2, w=1, h=1)
        assert _holds(crop, centre), f"frame {frame.index}: crop {crop} misses the part's centre"
        assert _holds(crop, part), f"frame {frame.index}: crop {crop} cuts the part {part}"
    assert flagged >= 6, "too few defects flagged to judge the pictures"


def test_a_damaged_parcels_picture_holds_the_whole_parcel_label_and_all() -> None:
    """What gw-3 of the demo does: the parcel runner's box of a damaged parcel, then the picture."""
    runner = ParcelRunner(bundled_manifest("parcels"), slot="parcels")
    line = ParcelLine(replace(ParcelLineConfig(seed=3), damage_rate=0.5))
    maker = Thumbnailer(ThumbnailConfig(max_per_minute=1000))
    pictured = 0
    for index in range(160):
        frame = line.frame(index)
        for prediction in runner.infer([Frame("cam", str(index), utcnow(), frame.image)]):
            picture = maker.for_result(prediction.output, frame.image)
            if picture is None:
                continue  # an intact parcel gets none
            pictured += 1
            x, y, w, h = _crop_of(picture)
            height, width = frame.image.shape[:2]
            assert w * h < 0.5 * width * height, "the parcel, not the whole belt"
            box = prediction.output.box
            assert box is not None
            centre = (box.x + box.w / 2, box.y + box.h / 2)
            parcel = min(frame.truth.parcels, key=lambda p: np.hypot(*np.subtract(p.center, centre)))
            # Its label is on its top: every corner of the parcel in view is in the picture.
            corners = np.clip(parcel.corners(), 0, [width - 1, height - 1])
            assert (corners >= [x, y]).all(), (index, (x, y, w, h), corners)
            assert (corners <= [x + w, y + h]).all(), (index, (x, y, w, h), corners)
    assert pictured >= 2, "too few damaged parcels to judge the pictures"


def test_a_crop_that_stays_over_the_byte_cap_is_not_sent() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    assert encode_thumbnail(noise, None, ThumbnailConfig(max_side=512, max_bytes=1024)) is None
    ok = encode_thumbnail(noise, None, ThumbnailConfig(max_side=64))
    assert ok is not None
    assert len(base64.b64encode(ok)) <= MAX_THUMBNAIL_B64


def test_only_flagged_items_get_a_thumbnail() -> None:
    maker = Thumbnailer(ThumbnailConfig())
    image = _frame(64, 48)
    assert maker.for_result(DefectOutput(label="ok", is_defect=False, score=0.9), image) is None
    assert maker.for_result(ClassificationOutput(label="x", score=0.5), image) is None
    assert maker.for_result(ParcelOutput(label="lane-1", score=0.9, track_id=1), image) is None
    damaged = ParcelOutput(label="reject", score=0.9, track_id=2, damaged=True)
    defect = DefectOutput(label="scratch", is_defect=True, score=0.9)
    for output in (damaged, defect):
        b64 = maker.for_result(output, image)
        assert b64 is not None
        assert base64.b64decode(b64).startswith(b"\xff\xd8")
    assert maker.made == 2
    assert maker.for_result(defect, np.empty((0,), np.uint8)) is None, "a text frame has no picture"
    off = Thumbnailer(ThumbnailConfig(enabled=False))
    assert off.for_result(defect, image) is None


def test_rate_limit_grants_at_most_n_in_any_sliding_minute() -> None:
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    grants = []
    for t in (0, 1, 2, 3, 59.9, 60.0, 60.5, 61, 62, 119.9):
        now[0] = t
        grants.append(limiter.allow())
    # 3 at 0-2 s; refused until the first grant is 60 s old; then one per expired grant.
    assert grants == [True, True, True, False, False, True, False, True, True, False]


def test_rate_limited_thumbnails_are_counted_as_skipped() -> None:
    now = [0.0]
    maker = Thumbnailer(ThumbnailConfig(max_per_minute=2), clock=lambda: now[0])
    defect = DefectOutput(label="scratch", is_defect=True, score=0.9)
    made = [maker.for_result(defect, _frame(64, 48)) is not None for _ in range(5)]
    assert made == [True, True, False, False, False]
    assert (maker.made, maker.skipped) == (2, 3)


def test_config_block_is_on_by_default_and_rejects_unknown_keys() -> None:
    cfg = ThumbnailConfig()
    assert cfg.enabled
    assert cfg.max_per_minute == 30
    with pytest.raises(ValidationError, match="max_per_minuet"):
        ThumbnailConfig.model_validate({"max_per_minuet": 5})
    with pytest.raises(ValidationError, match="max_bytes"):
        ThumbnailConfig(max_bytes=MAX_THUMBNAIL_B64)  # base64 of it would not fit the wire cap


def test_agent_yaml_thumbnails_block_is_parsed_and_a_typo_names_its_path(tmp_path: Path) -> None:
    base = {"gateway_id": "gw-1", "line": "line-1", "state_dir": str(tmp_path)}
    cfg = parse_config({**base, "thumbnails": {"max_per_minute": 5, "quality": 60}}, "gw.yaml")
    assert (cfg.thumbnails.max_per_minute, cfg.thumbnails.quality, cfg.thumbnails.enabled) == (5, 60, True)
    assert parse_config(base, "gw.yaml").thumbnails == ThumbnailConfig()
    with pytest.raises(ConfigError, match=r"thumbnails\.max_per_minuet"):
        parse_config({**base, "thumbnails": {"max_per_minuet": 5}}, "gw.yaml")
