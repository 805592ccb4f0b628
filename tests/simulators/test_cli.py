"""``factory-sim`` on the command line: the camera subcommand, the registry of subcommands, ``serve``,
and the demo's help."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from simulators.cli import SUBCOMMANDS, build_parser, main


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
        # Started as a background job is: SIGINT ignored, so no KeyboardInterrupt; it must still stop.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
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
        # Generous: the server joins its threads (each within 10 s) on a loaded machine.
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_demo_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "how many virtual gateways (default: 3)" in text
    assert "port of the API / console (default: 8000)" in text
    assert "frames per second per camera (default: 2.0)" in text
    assert "(default: var/demo)" in text
    assert "seconds between status lines (default: 15.0)" in text
    assert "(default: run until Ctrl-C)" in text
