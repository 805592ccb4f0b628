"""Frames written to disk: a PNG folder with labels, and an MJPG video."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.writers import write_frames, write_video


def _line() -> CameraLine:
    return CameraLine(CameraLineConfig(seed=13, width=320, height=240, defect_rate=0.6))


def test_write_frames_folder_has_pngs_and_labels(tmp_path: Path) -> None:
    line = _line()
    labels_path = write_frames(line, tmp_path / "out", count=5, start=10)
    rows = [json.loads(r) for r in labels_path.read_text().splitlines()]
    assert [r["file"] for r in rows] == [f"frame_{i:06d}.png" for i in range(1, 6)]
    assert [r["index"] for r in rows] == list(range(10, 15))
    for row in rows:
        image = cv2.imread(str(tmp_path / "out" / row["file"]))
        frame = line.frame(row["index"])
        assert np.array_equal(image, frame.image)  # PNG is lossless
        assert {k: v for k, v in row.items() if k != "file"} == frame.truth.to_dict()


def test_write_video_is_readable_with_labels(tmp_path: Path) -> None:
    line = _line()
    video = tmp_path / "line.avi"
    labels_path = write_video(line, video, count=8, fps=10)
    assert labels_path.name == "line.avi.labels.jsonl"
    rows = [json.loads(r) for r in labels_path.read_text().splitlines()]
    assert [r["position"] for r in rows] == list(range(8))
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    assert len(frames) == 8
    assert np.abs(frames[3].astype(np.int16) - line.frame(3).image.astype(np.int16)).mean() < 4.0
