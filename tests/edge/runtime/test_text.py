"""The notes (text) runner: golden output, results independent of their batch, clear load errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import domain_models.notes
from edge_agent.frames import Frame
from edge_agent.runtime.model import ModelLoadError
from edge_agent.runtime.registry import build_runner
from edge_agent.runtime.text import TextRunner
from protocol.inference import NOTE_URGENCIES
from protocol.manifest import load_manifest
from protocol.messages import MAX_NOTE_CHARS, NotesOutput, utcnow
from simulators.notes_line import NotesLine

ARTIFACTS = Path(domain_models.notes.__file__).parent / "artifacts"
MANIFEST = ARTIFACTS / "notes-minilm-1.1.0.manifest.json"


def _note(text: str | None, ref: str = "n1") -> Frame:
    return Frame("notes", ref, utcnow(), np.zeros((0, 0, 3), np.uint8), text=text)


@pytest.fixture(scope="module")
def runner() -> TextRunner:
    built = build_runner(MANIFEST, "notes")
    assert isinstance(built, TextRunner)
    return built


def test_registry_builds_the_text_runner_and_it_gives_the_golden_output(runner: TextRunner) -> None:
    golden = runner.manifest.golden
    assert golden is not None
    text = (ARTIFACTS / golden.input).read_text(encoding="utf-8").strip()
    (pred,) = runner.infer([_note(text)])
    out = pred.output
    assert isinstance(out, NotesOutput)
    assert out.label == out.category == golden.expected_label
    assert set(out.scores) == set(golden.expected_scores)
    for key, expected in golden.expected_scores.items():
        assert out.scores[key] == pytest.approx(expected, abs=golden.tolerance), key
    assert runner.urgencies == NOTE_URGENCIES
    assert out.urgency == max(NOTE_URGENCIES, key=lambda u: out.scores[f"urgency.{u}"])


def test_a_notes_result_does_not_depend_on_the_notes_queued_with_it(runner: TextRunner) -> None:
    notes = NotesLine(seed=77).notes(6)
    frames = [_note(n.text, str(n.index)) for n in notes]
    batched = [p.output for p in runner.infer(frames)]
    single = [runner.infer([f])[0].output for f in frames]
    for b, s in zip(batched, single, strict=True):
        assert isinstance(b, NotesOutput)
        assert isinstance(s, NotesOutput)
        assert b == s  # dynamic INT8 scales per batch, so the runner must run notes one by one


def test_a_notes_result_carries_the_note_as_written_made_fit_for_the_wire(runner: TextRunner) -> None:
    (plain,) = runner.infer([_note("Hydraulic leak at press 4\n\tsee log")])
    assert isinstance(plain.output, NotesOutput)
    assert plain.output.text == "Hydraulic leak at press 4\n\tsee log"
    (long,) = runner.infer([_note("belt slips \x07 " * 400)])  # 5,200 characters with a bell in each
    assert isinstance(long.output, NotesOutput)
    text = long.output.text or ""
    assert len(text) == MAX_NOTE_CHARS
    assert text.startswith("belt slips \\x07 belt slips")  # the bell spelled out, not sent raw
    assert text.endswith("\u2026")  # and the cut said


def test_a_frame_without_text_is_refused_naming_slot_and_frame(runner: TextRunner) -> None:
    with pytest.raises(ValueError, match=r"slot notes: frame n9 .* no text"):
        runner.infer([_note(None, "n9")])


def _copy_release(tmp_path: Path, edit: dict[str, object]) -> Path:
    manifest = load_manifest(MANIFEST)
    for name in [manifest.artifact, *manifest.files]:
        (tmp_path / name).symlink_to(ARTIFACTS / name)
    data = json.loads(MANIFEST.read_text())
    data.update(edit)
    path = tmp_path / MANIFEST.name
    path.write_text(json.dumps(data))
    return path


def test_urgency_order_missing_from_thresholds_is_refused_at_load(tmp_path: Path) -> None:
    path = _copy_release(tmp_path, {"thresholds": {"urgency.low": 0.0, "urgency.high": 2.0}})
    with pytest.raises(ModelLoadError, match="urgency"):
        TextRunner(path, "notes")


def test_a_manifest_whose_outputs_are_not_the_graphs_is_refused(tmp_path: Path) -> None:
    outputs = json.loads(MANIFEST.read_text())["outputs"]
    outputs[2]["name"] = "pooled"
    path = _copy_release(tmp_path, {"outputs": outputs})
    with pytest.raises(ModelLoadError, match="output names"):
        TextRunner(path, "notes")
