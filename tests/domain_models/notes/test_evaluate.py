"""domain_models.notes.evaluate: a release is scored through the gateway's TextRunner, a bare graph
through OnnxNotes, and both give the same verdict on every note."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import domain_models.notes
from domain_models.common import PipelineError
from domain_models.notes.data import DEV, MAX_LENGTH, load_jsonl
from domain_models.notes.evaluate import OnnxNotes, ReleaseNotes, evaluate

ARTIFACTS = Path(domain_models.notes.__file__).parent / "artifacts"
MANIFEST = ARTIFACTS / "notes-minilm-1.1.0.manifest.json"


def test_the_release_through_the_gateway_runner_gives_the_bare_graphs_verdicts_and_figures() -> None:
    dev = load_jsonl(DEV)
    release = ReleaseNotes(MANIFEST)
    assert release.manifest.text is not None
    bare = OnnxNotes(
        ARTIFACTS / release.manifest.artifact, ARTIFACTS / release.manifest.text.tokenizer, MAX_LENGTH
    )
    by_runner, by_graph = release.predict(dev.texts), bare.predict(dev.texts)
    assert np.array_equal(by_runner[0], by_graph[0])
    assert np.array_equal(by_runner[1], by_graph[1])
    assert evaluate(release, dev) == evaluate(bare, dev)


def test_a_release_whose_graph_does_not_verify_is_refused_naming_the_file(tmp_path: Path) -> None:
    manifest = json.loads(MANIFEST.read_text())
    manifest["sha256"] = "0" * 64
    broken = tmp_path / MANIFEST.name
    broken.write_text(json.dumps(manifest))
    for name in (manifest["artifact"], *manifest["files"]):
        (tmp_path / name).symlink_to(ARTIFACTS / name)
    with pytest.raises(
        (PipelineError, ValueError), match=rf"{tmp_path}/notes-minilm-1\.1\.0\.onnx: sha256 .* does not match"
    ):
        ReleaseNotes(broken)
