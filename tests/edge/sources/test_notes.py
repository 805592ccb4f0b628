"""The notes source: .txt and .jsonl notes in name order, watching for new ones, and notes -> agent -> broker."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import domain_models.notes
from edge_agent.agent import Agent
from edge_agent.config import NotesSourceConfig
from edge_agent.frames import DropPolicy, Frame
from protocol.inference import NOTE_CATEGORIES, NOTE_URGENCIES
from protocol.messages import NotesOutput
from protocol.topics import TopicSpace
from simulators.notes_line import NotesLine, write_notes
from tests.support.agent import agent_config
from tests.support.fake_cloud import FakeCloud
from tests.support.waiting import wait_for

MANIFEST = Path(domain_models.notes.__file__).parent / "artifacts" / "notes-minilm-1.1.0.manifest.json"


class _Collect:
    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def __call__(self, frame: Frame, policy: DropPolicy) -> None:
        assert policy is DropPolicy.BLOCK
        self.frames.append(frame)


def test_notes_source_reads_txt_and_jsonl_notes_in_name_order(tmp_path: Path) -> None:
    from edge_agent.sources import build_source

    (tmp_path / "a.txt").write_text("pump 3 leaking oil\n")
    (tmp_path / "b.jsonl").write_text('{"id": "wo-17", "text": "HMI frozen"}\n"guard missing"\nnot json\n\n')
    (tmp_path / "c.txt").write_text("   \n")  # empty: skipped with a warning
    sink = _Collect()
    cfg = NotesSourceConfig(type="notes", name="notes", path=tmp_path, pattern="*.*")
    source = build_source(cfg, sink, threading.Event())
    source.start()
    assert source.join(5)
    assert [(f.ref, f.text) for f in sink.frames] == [
        ("a.txt", "pump 3 leaking oil"),
        ("wo-17", "HMI frozen"),
        ("b.jsonl:2", "guard missing"),
    ]
    assert all(f.image.size == 0 and f.source == "notes" for f in sink.frames)


def test_watching_source_reads_new_files_and_appended_lines_once(tmp_path: Path) -> None:
    from edge_agent.sources.notes import NotesSource

    stop = threading.Event()
    sink = _Collect()
    source = NotesSource(
        NotesSourceConfig(type="notes", name="n", path=tmp_path, pattern="*.jsonl", watch=True, poll_s=0.05),
        sink,
        stop,
    )
    log = tmp_path / "log.jsonl"
    log.write_text('"first"\n"half-writ')  # the second line has no newline yet
    source.start()
    try:
        wait_for(lambda: len(sink.frames) == 1, 5, "the first note")
        with log.open("a") as fh:
            fh.write('ten"\n"third"\n')
        (tmp_path / "other.jsonl").write_text('"fourth"\n')
        wait_for(lambda: len(sink.frames) == 4, 5, "appended lines and the new file")
    finally:
        stop.set()
        assert source.join(5)
    assert [f.text for f in sink.frames] == ["first", "half-written", "third", "fourth"]


def test_a_folder_of_notes_reaches_the_cloud_as_notes_outputs(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    notes = NotesLine(seed=31).notes(8)
    folder = tmp_path / "notes"
    write_notes(folder, notes)
    config = agent_config(
        tmp_path,
        mosquitto,
        topic_space,
        MANIFEST,
        folder,
        sources=[{"type": "notes", "name": "notes", "path": str(folder)}],
        models=[{"slot": "notes", "manifest": str(MANIFEST), "sources": ["notes"]}],
    )
    cloud = FakeCloud(mosquitto, topic_space, config.gateway_id)
    agent = Agent(config)
    try:
        agent.start()
        wait_for(lambda: len(cloud.frames()) == len(notes), 60, "a result for every note")
    finally:
        agent.stop()
        cloud.close()
    by_frame = {item.frame: item for item in cloud.items()}
    assert set(by_frame) == {f"note-{n.index:06d}.txt" for n in notes}
    correct = 0
    for note in notes:
        item = by_frame[f"note-{note.index:06d}.txt"]
        assert isinstance(item.output, NotesOutput)
        assert item.output.category in NOTE_CATEGORIES
        assert item.output.urgency in NOTE_URGENCIES
        assert item.source == "notes"
        assert item.model.name == "notes-minilm"
        correct += item.output.category == note.category
    assert correct >= 6  # generator notes score ~0.97; 6/8 leaves room for noise, not for a broken model


def test_a_typo_in_a_notes_source_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    from edge_agent.config import ConfigError, parse_config

    base = {"gateway_id": "gw-1", "line": "l1", "state_dir": str(tmp_path)}
    good = parse_config({**base, "sources": [{"type": "notes", "name": "n", "path": "in"}]}, "gw.yaml")
    (source,) = good.sources
    assert isinstance(source, NotesSourceConfig)
    assert (source.pattern, source.watch) == ("*.txt", False)
    bad = {**base, "sources": [{"type": "notes", "name": "n", "path": "in", "wacth": True}]}
    with pytest.raises(ConfigError, match="wacth"):
        parse_config(bad, "gw.yaml")
