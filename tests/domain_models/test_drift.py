"""``factory-models drift``: drift: yes on a new look, no on a fresh seed of the usual one, exit 2
with one line naming what is wrong on bad input. Runs the bundled PatchCore, parcels and notes
releases.

Seed 7101 is used by neither the reference (11, 2011) nor the figures of docs/drift.md (4011-4017).
Seed 64_101 of the parcel line and the notes stream is used by neither their training (parcels:
0-23, 55000-55005, 500000-500003; notes: 0, 1000), their references (61_000-62_003,
``domain_models.drift_sets``) nor the figures of ``bench.drift_streams`` (65_000 on).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import domain_models.anomaly
import domain_models.notes
import domain_models.parcels
from domain_models.cli import main
from domain_models.drift_reference import WINDOW
from domain_models.drift_sets import parcel_frames
from simulators.camera_line import CameraLineConfig
from simulators.line_frames import LineFrames
from simulators.notes_line import NotesLine
from tests.support.agent import build_model
from tests.support.drift import write_frames

FP32 = Path(domain_models.anomaly.__file__).parent / "artifacts" / "defect-patchcore-1.1.0.manifest.json"
PARCELS = Path(domain_models.parcels.__file__).parent / "artifacts" / "parcel-detector-1.1.0.manifest.json"
NOTES = Path(domain_models.notes.__file__).parent / "artifacts" / "notes-minilm-1.1.0.manifest.json"
LINE = CameraLineConfig(seed=7101)
STREAM_SEED = 64_101
IMAGES = 140  # a window of 100, then two more evaluations 20 apart: the fewest that can confirm


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("drift")
    usual = write_frames(root / "usual", LineFrames((LINE, 0, IMAGES)))
    new_look = write_frames(root / "new-look", LineFrames((LINE.unseen_appearance(), 0, IMAGES)))
    return usual, new_look


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["drift", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _verdict(capsys: pytest.CaptureFixture[str], data: Path, model: Path = FP32) -> str:
    """What the check prints for ``data`` with a bundled model (it must exit 0 either way)."""
    code, out, _ = _run(capsys, "--model", str(model), "--data", str(data))
    assert code == 0
    return out


def _signal_row(out: str, signal: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.startswith(f"{signal} "))


@pytest.mark.slow
def test_a_new_belt_and_light_is_drift(
    folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _verdict(capsys, folders[1])
    assert out.startswith("drift: yes\n")
    _, test, statistic, threshold, moved = _signal_row(out, "warmth")
    assert (test, moved) == ("ks", "up")
    assert float(statistic) > 5 * float(threshold)
    assert "the look of the inputs changed" in out
    assert f"the last {WINDOW} of {IMAGES} inputs" in out


@pytest.mark.slow
def test_a_fresh_seed_of_the_usual_look_is_not_drift(
    folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _verdict(capsys, folders[0])
    assert out.startswith("drift: no\n")
    assert "moved: nothing moved" in out
    for signal in ("brightness", "contrast", "warmth", "tint", "sharpness", "score"):
        assert _signal_row(out, signal)[-1] == "-"


def _moved_margin(out: str, signal: str) -> tuple[str, float]:
    """A signal's direction ('-' when it did not move) and its statistic / threshold."""
    _, _, statistic, threshold, moved = _signal_row(out, signal)
    return moved, float(statistic) / float(threshold)


@pytest.mark.slow
@pytest.mark.parametrize("unseen", [True, False], ids=["new belt and light", "usual look"])
def test_parcels_a_new_belt_and_light_is_drift_and_a_fresh_line_of_the_usual_look_is_not(
    unseen: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Consecutive frames of one camera, as the detector's tracker needs them.
    folder = write_frames(tmp_path / "frames", parcel_frames((STREAM_SEED,), IMAGES, unseen=unseen))
    out = _verdict(capsys, folder, PARCELS)
    if unseen:
        assert out.startswith("drift: yes\n")
        assert "the look of the inputs changed" in out
        # The green belt under flickering light: the frames' colour moves by many dead bands.
        moved, ratio = _moved_margin(out, "tint")
        assert (moved, ratio > 3.0) == ("up", True)
    else:
        assert out.startswith("drift: no\n")
        assert "moved: nothing moved" in out
    for signal in ("detections", "confidence", "unread"):
        _signal_row(out, signal)  # the detector's own figures are reported too


def _notes_file(path: Path, german: float) -> Path:
    notes = NotesLine(STREAM_SEED, german=german).notes(IMAGES)
    path.write_text("".join(json.dumps({"text": n.text}) + "\n" for n in notes), encoding="utf-8")
    return path


@pytest.mark.parametrize("german", [1.0, 0.0], ids=["another site's German shorthand", "usual stream"])
def test_notes_another_sites_shorthand_is_drift_and_a_fresh_stream_is_not(
    german: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _verdict(capsys, _notes_file(tmp_path / "notes.jsonl", german), NOTES)
    if german:
        assert out.startswith("drift: yes\n")
        assert "the notes changed" in out
        # The notes lie further from their labels' fit-time centroids, clearly over the threshold.
        moved, ratio = _moved_margin(out, "centroid")
        assert (moved, ratio > 1.5) == ("up", True)
    else:
        assert out.startswith("drift: no\n")
        assert "moved: nothing moved" in out
        assert _moved_margin(out, "score")[0] == "-"


def _tiny_folder(root: Path, count: int) -> Path:
    return write_frames(root, LineFrames((CameraLineConfig(seed=7102, width=160, height=120), 0, count)))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing folder", "not a folder"),
        ("no images", "no images"),
        ("a file for images", "takes a folder of images"),
        ("too few images", "the check needs at least 140"),
        ("no reference", "carries no drift reference"),
        ("missing manifest", "manifest file not found"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_it(
    case: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, data = FP32, tmp_path / "images"
    if case == "no images":
        data.mkdir()
        (data / "notes.txt").write_text("not an image")
    elif case == "a file for images":
        data = tmp_path / "notes.jsonl"
        data.write_text('{"text": "belt squeaks"}\n')
    elif case == "too few images":
        _tiny_folder(data, 20)
    elif case == "no reference":
        model = build_model(tmp_path / "model")
        _tiny_folder(data, 3)
    elif case == "missing manifest":
        model = tmp_path / "nope.manifest.json"
    code, out, err = _run(capsys, "--model", str(model), "--data", str(data))
    assert code == 2
    assert out == ""
    assert err.startswith("factory-models drift: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1
