"""Thumbnails of flagged results: validated and stored at ingest, trimmed per line by retention.

The agent writes the crop's geometry into the JPEG as a comment segment (the form is
``protocol.messages.CROP_COMMENT_PREFIX``'s); it is read here once and kept as JSON next to the bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import struct
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from cloud.db.dialect import insert_ignore
from cloud.db.models import Thumbnail
from protocol.messages import CROP_COMMENT_PREFIX, CROP_GEOMETRY_KEYS, MAX_THUMBNAIL_B64, ResultItem

log = logging.getLogger(__name__)

MAX_THUMBNAIL_BYTES = MAX_THUMBNAIL_B64 * 3 // 4
# Kept per line by default: a gallery needs the recent ones, not a year of crops.
DEFAULT_KEEP_PER_LINE = 2000


class ThumbnailError(ValueError):
    """A thumbnail that is not a usable JPEG; the message says why."""


def decode_jpeg(b64: str) -> bytes:
    """The JPEG bytes of a base64 thumbnail; ThumbnailError if not base64, too big or not a JPEG."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ThumbnailError(f"not base64: {exc}") from None
    if len(raw) > MAX_THUMBNAIL_BYTES:
        raise ThumbnailError(f"{len(raw)} bytes, over the {MAX_THUMBNAIL_BYTES}-byte cap")
    if not (raw.startswith(b"\xff\xd8") and raw.rstrip(b"\x00").endswith(b"\xff\xd9")):
        raise ThumbnailError("not a JPEG (no SOI/EOI markers)")
    return raw


def crop_geometry(jpeg: bytes) -> dict[str, int] | None:
    """The crop geometry from the agent's comment segment right after SOI, or None."""
    if len(jpeg) < 6 or jpeg[2:4] != b"\xff\xfe":
        return None
    (length,) = struct.unpack(">H", jpeg[4:6])
    body = jpeg[6 : 4 + length]
    if not body.startswith(CROP_COMMENT_PREFIX):
        return None
    try:
        data = json.loads(body[len(CROP_COMMENT_PREFIX) :])
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    values = [data.get(k) for k in CROP_GEOMETRY_KEYS]
    if not all(isinstance(v, int) and v >= 0 for v in values):
        return None
    return {k: cast(int, v) for k, v in zip(CROP_GEOMETRY_KEYS, values, strict=True)}


def thumbnail_rows(items: Iterable[ResultItem]) -> list[dict[str, Any]]:
    """Rows for the items that carry a valid thumbnail; a bad one is logged and skipped.

    A broken picture must not cost the result (or dead-letter its whole batch).
    """
    rows = []
    seen = set()
    for item in items:
        if item.thumbnail_jpeg is None or item.id in seen:
            continue
        seen.add(item.id)
        try:
            jpeg = decode_jpeg(item.thumbnail_jpeg)
        except ThumbnailError as exc:
            log.warning("dropping the thumbnail of result %s (line %s): %s", item.id, item.line, exc)
            continue
        rows.append(
            {
                "result_id": item.id,
                "line": item.line,
                "captured_at": item.captured_at,
                "jpeg": jpeg,
                "size_bytes": len(jpeg),
                "crop": crop_geometry(jpeg),
            }
        )
    return rows


def store_thumbnails(session: Session, items: Iterable[ResultItem]) -> int:
    """Insert the thumbnails of ``items`` (after their results), skipping ones already stored."""
    rows = thumbnail_rows(items)
    if rows:
        session.execute(insert_ignore(session, Thumbnail), rows)
    return len(rows)


def trim_per_line(session: Session, keep: int = DEFAULT_KEEP_PER_LINE) -> int:
    """Delete all but the newest ``keep`` thumbnails of each line; return how many were deleted.

    Age-based retention needs nothing here: a thumbnail is deleted with its result.
    """
    if keep < 0:
        raise ValueError(f"thumbnails to keep per line must be >= 0, got {keep}")
    deleted = 0
    counts = session.execute(
        select(Thumbnail.line, func.count()).group_by(Thumbnail.line).having(func.count() > keep)
    ).all()
    for line, _count in counts:
        newest = (
            select(Thumbnail.result_id)
            .where(Thumbnail.line == line)
            .order_by(Thumbnail.captured_at.desc(), Thumbnail.result_id.desc())
            .limit(keep)
        )
        stmt = delete(Thumbnail).where(Thumbnail.line == line, Thumbnail.result_id.not_in(newest))
        deleted += int(cast(CursorResult[Any], session.execute(stmt)).rowcount)
    if deleted:
        log.info("thumbnail retention: deleted %d beyond %d per line", deleted, keep)
    return deleted
