"""Frames written to disk (PNG folder, MJPG video) and the ``factory-sim camera`` CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.cli import SUBCOMMANDS, main
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


def test_cli_camera_out_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "frames"
    code = main(
        ["camera", "--seed", "4", "--width", "320", "--height", "240", "--out-dir", str(out), "--count", "3"]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "frame_000001.png",
        "frame_000002.png",
        "frame_000003.png",
        "labels.jsonl",
    ]
    assert "wrote 3 frames" in capsys.readouterr().out


def test_cli_camera_without_count_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["camera", "--out-dir", str(tmp_path)])
    assert info.value.code == 2
    assert "--count" in capsys.readouterr().err


def test_cli_registry_lists_camera() -> None:
    assert "camera" in SUBCOMMANDS


def test_cli_serve_runs_until_interrupted() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.cli",
            "camera",
            "--serve",
            "0",
            "--width",
            "320",
            "--height",
            "240",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/stream\.mjpg", line)
        assert match, f"no URL in the CLI's first line: {line!r}"
        with urllib.request.urlopen(f"{match.group(1)}/frame.jpg", timeout=10) as resp:
            assert resp.status == 200
            assert resp.read(2) == b"\xff\xd8"  # JPEG start-of-image
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
