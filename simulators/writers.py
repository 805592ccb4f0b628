"""Write simulated frames to disk: a folder of PNGs with ``labels.jsonl``, or an MJPG video.

Every frame's ground truth goes beside it, one JSON object per line:
``{"file": "frame_000001.png", "index": 0, "label": "scratch", "part": "plate", "box": [x, y, w, h],
"part_box": [x, y, w, h]}`` (``box`` is null for a good part; ``part_box`` bounds the part).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2

from simulators.camera_line import CameraLine

log = logging.getLogger(__name__)

LABELS_FILE = "labels.jsonl"


def frame_file_name(position: int) -> str:
    """``frame_000001.png`` for the first frame written (position 0)."""
    return f"frame_{position + 1:06d}.png"


def write_frames(line: CameraLine, out_dir: Path, count: int, start: int = 0) -> Path:
    """Write frames ``start .. start+count-1`` as PNGs plus ``labels.jsonl``; returns the labels path."""
    if count < 1:
        raise ValueError(f"write_frames: count must be >= 1, got {count}")
    out_dir.mkdir(parents=True, exist_ok=True)
    labels_path = out_dir / LABELS_FILE
    with labels_path.open("w", encoding="utf-8") as labels:
        for position in range(count):
            frame = line.frame(start + position)
            name = frame_file_name(position)
            if not cv2.imwrite(str(out_dir / name), frame.image):
                raise OSError(f"write_frames: could not write {out_dir / name}")
            labels.write(json.dumps({"file": name, **frame.truth.to_dict()}) + "\n")
    log.info("wrote %d frames and %s to %s", count, LABELS_FILE, out_dir)
    return labels_path


def write_video(line: CameraLine, path: Path, count: int, fps: float, start: int = 0) -> Path:
    """Write frames as an MJPG ``.avi`` and their truth to ``<path>.labels.jsonl``; returns the labels path.

    In the labels, ``file`` is the video's name and ``position`` the frame number inside it.
    """
    if count < 1:
        raise ValueError(f"write_video: count must be >= 1, got {count}")
    if fps <= 0:
        raise ValueError(f"write_video: fps must be > 0, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    size = (line.config.width, line.config.height)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise OSError(f"write_video: OpenCV cannot open {path} for MJPG writing (use a .avi name)")
    labels_path = path.with_name(path.name + ".labels.jsonl")
    try:
        with labels_path.open("w", encoding="utf-8") as labels:
            for position in range(count):
                frame = line.frame(start + position)
                writer.write(frame.image)
                labels.write(
                    json.dumps({"file": path.name, "position": position, **frame.truth.to_dict()}) + "\n"
                )
    finally:
        writer.release()
    log.info("wrote %d frames to %s (%s beside it)", count, path, labels_path.name)
    return labels_path
