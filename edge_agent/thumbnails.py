"""Small JPEG crops of flagged items for the console's defect gallery, rate-limited per slot.

The crop shows the whole subject with a margin: for a defect, the part it is on (found in the
picture by :func:`edge_agent.part_finder.find_part`, the defect box included), so the picture is
the part a shift lead can recognise, not a corner of it against the belt; for a parcel, the
parcel's box, shipping label and all. A defect whose part does not stand out from the belt (or
fills the frame) gets the whole frame.

The crop rides the durable outbox inside ``ResultItem.thumbnail_jpeg``, so a thumbnail is lost
only if its result is. Where the crop sits in the source frame is written into the JPEG itself, as
a comment segment (``protocol.messages.CROP_COMMENT_PREFIX`` + JSON of ``CROP_GEOMETRY_KEYS``):
the wire format needs no extra fields and the cloud can map a box (frame pixels) onto the picture.
"""

from __future__ import annotations

import base64
import json
import logging
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.frames import Image
from edge_agent.part_finder import find_part
from protocol.messages import (
    CROP_COMMENT_PREFIX,
    CROP_GEOMETRY_KEYS,
    MAX_THUMBNAIL_B64,
    Box,
    DefectOutput,
    ParcelOutput,
    TaskOutput,
)

log = logging.getLogger(__name__)

# Base64 grows bytes by 4/3; the protocol caps the base64 text.
MAX_JPEG_BYTES = MAX_THUMBNAIL_B64 * 3 // 4
# Lower qualities tried when a crop is over the byte cap (busy textures compress badly).
_FALLBACK_QUALITIES = (50, 35)


class ThumbnailConfig(BaseModel):
    """Thumbnails of flagged items (defects, damaged parcels) sent with their results."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Attach a JPEG crop to flagged results")
    max_per_minute: int = Field(
        default=30, ge=0, le=6000, description="Per model slot; flagged items beyond it go without one"
    )
    max_side: int = Field(default=160, ge=16, le=512, description="Longest side of the JPEG in pixels")
    quality: int = Field(default=70, ge=10, le=95, description="JPEG quality (lowered if over max_bytes)")
    max_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        le=MAX_JPEG_BYTES,
        description="Largest JPEG; a crop that stays bigger at the lowest quality is not sent",
    )
    margin: float = Field(
        default=0.15,
        ge=0,
        le=4,
        description="Context around the part or parcel shown, as a fraction of its size per side",
    )


def is_flagged(output: TaskOutput) -> bool:
    """Whether a result deserves a picture: a defect, or a damaged parcel."""
    if isinstance(output, DefectOutput):
        return output.is_defect
    if isinstance(output, ParcelOutput):
        return output.damaged
    return False


def subject_box(output: TaskOutput, image: Image) -> Box | None:
    """What a flagged result's picture shows (frame pixels); None: the whole frame.

    A defect: its part, stretched to hold the defect box should the part's edge cut through it
    (the console draws that box on the picture). A parcel: its box, which holds its label.
    """
    if isinstance(output, ParcelOutput):
        return output.box
    if not isinstance(output, DefectOutput):
        return None
    part = find_part(image, output.box)
    if part is None or output.box is None:
        return part
    box = output.box
    x0, y0 = min(part.x, box.x), min(part.y, box.y)
    x1, y1 = max(part.x + part.w, box.x + box.w), max(part.y + part.h, box.y + box.h)
    return Box(x=x0, y=y0, w=x1 - x0, h=y1 - y0)


def crop_rect(box: Box | None, frame_w: int, frame_h: int, margin: float) -> tuple[int, int, int, int]:
    """The (x, y, w, h) to crop: the box grown by ``margin`` and clipped to the frame, else the frame."""
    if box is None or box.w == 0 or box.h == 0:
        return 0, 0, frame_w, frame_h
    dx, dy = int(box.w * margin), int(box.h * margin)
    x0, y0 = max(0, box.x - dx), max(0, box.y - dy)
    x1, y1 = min(frame_w, box.x + box.w + dx), min(frame_h, box.y + box.h + dy)
    if x1 <= x0 or y1 <= y0:  # a box outside the frame (a model bug): show the whole frame
        return 0, 0, frame_w, frame_h
    return x0, y0, x1 - x0, y1 - y0


def _with_comment(jpeg: bytes, comment: bytes) -> bytes:
    # A COM segment (FF FE, big-endian length including itself) right after SOI (FF D8).
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[2:]


def encode_thumbnail(image: Image, box: Box | None, cfg: ThumbnailConfig) -> bytes | None:
    """A JPEG crop of ``image`` (BGR) around ``box``, its subject, with its geometry; None if too big."""
    if image.ndim < 2 or image.size == 0:
        return None
    frame_h, frame_w = image.shape[:2]
    x, y, w, h = crop_rect(box, frame_w, frame_h, cfg.margin)
    crop: npt.NDArray[Any] = image[y : y + h, x : x + w]
    scale = min(1.0, cfg.max_side / max(w, h))
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    if (tw, th) != (w, h):
        crop = cv2.resize(crop, (tw, th), interpolation=cv2.INTER_AREA)
    geometry = dict(zip(CROP_GEOMETRY_KEYS, (x, y, w, h, frame_w, frame_h, tw, th), strict=True))
    comment = CROP_COMMENT_PREFIX + json.dumps(geometry, separators=(",", ":")).encode()
    for quality in (cfg.quality, *(q for q in _FALLBACK_QUALITIES if q < cfg.quality)):
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(crop), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            return None
        jpeg = _with_comment(buf.tobytes(), comment)
        if len(jpeg) <= cfg.max_bytes:
            return jpeg
    return None


class RateLimiter:
    """At most ``per_minute`` grants in any 60-second window (a sliding window, exact)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = per_minute
        self._clock = clock
        self._granted: deque[float] = deque()

    def allow(self) -> bool:
        """Take one grant if the window has room."""
        now = self._clock()
        while self._granted and now - self._granted[0] >= 60.0:
            self._granted.popleft()
        if len(self._granted) >= self._limit:
            return False
        self._granted.append(now)
        return True


class Thumbnailer:
    """Makes the base64 thumbnail of one slot's flagged results, within the slot's rate limit."""

    def __init__(self, cfg: ThumbnailConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self._limiter = RateLimiter(cfg.max_per_minute, clock)
        self.made = 0
        self.skipped = 0  # flagged but rate-limited or too big: counted, not logged per item

    def for_result(self, output: TaskOutput, image: Image) -> str | None:
        """The base64 JPEG for ``output`` on ``image``, or None (not flagged, off, limited, too big)."""
        if not self.cfg.enabled or not is_flagged(output):
            return None
        if not self._limiter.allow():
            self.skipped += 1
            return None
        try:
            jpeg = encode_thumbnail(image, subject_box(output, image), self.cfg)
        except Exception:
            # A thumbnail is a convenience: no failure of it may cost the result it belongs to.
            log.exception("cannot encode a thumbnail for a flagged result; sending the result without one")
            jpeg = None
        if jpeg is None:
            self.skipped += 1
            return None
        self.made += 1
        return base64.b64encode(jpeg).decode("ascii")
