"""The bundled notes model: its manifest and graph, a tiny CI retrain, INT8 parity and the gate."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest

import domain_models.notes
from domain_models.cli import main as factory_models
from domain_models.common import PipelineError, check_manifest_matches_onnx
from domain_models.notes.data import HELDOUT, MAX_LENGTH, generated, load_jsonl
from domain_models.notes.evaluate import NotesMetrics, OnnxNotes, evaluate, score
from domain_models.notes.head import Heads, fit_heads, predict
from domain_models.notes.release import gate_heads
from domain_models.notes.train import QuantizeResult, package
from protocol.manifest import ModelManifest, artifact_path, load_manifest, sha256_file
from simulators.notes_line import CATEGORIES, URGENCIES, NotesLine

ARTIFACTS = Path(domain_models.notes.__file__).parent / "artifacts"
MANIFEST = ARTIFACTS / "notes-minilm-1.0.0.manifest.json"
# Chance macro-F1 is ~0.17 (6 categories) and ~0.33 (3 urgencies). The card reports ~0.78 / ~0.68
# on the hand-written notes; these floors leave room for 108-note noise, not for a broken model.
CATEGORY_FLOOR, URGENCY_FLOOR = 0.65, 0.55
TINY_CATEGORY_FLOOR, TINY_URGENCY_FLOOR = 0.5, 0.45


@pytest.fixture(scope="module")
def manifest() -> ModelManifest:
    return load_manifest(MANIFEST)  # also checks artifact, tokenizer and golden hashes


@pytest.fixture(scope="module")
def model(manifest: ModelManifest) -> OnnxNotes:
    assert manifest.text is not None
    return OnnxNotes(artifact_path(MANIFEST, manifest), ARTIFACTS / manifest.text.tokenizer, MAX_LENGTH)


def test_manifest_describes_a_small_int8_release(manifest: ModelManifest) -> None:
    onnx_file = artifact_path(MANIFEST, manifest)
    assert (manifest.task, manifest.labels) == ("notes", CATEGORIES)
    assert manifest.thresholds == {f"urgency.{u}": float(i) for i, u in enumerate(URGENCIES)}
    assert manifest.text is not None
    assert manifest.text.tokenizer in manifest.files
    assert manifest.size_bytes == onnx_file.stat().st_size < 30_000_000  # INT8; FP32 is ~90 MB
    assert manifest.metrics["heldout_category_macro_f1"] >= CATEGORY_FLOOR
    assert manifest.metrics["heldout_urgency_macro_f1"] >= URGENCY_FLOOR
    assert not list(ARTIFACTS.glob("*fp32*"))  # the gateway needs only the shipped graph
    card = (ARTIFACTS / "MODEL_CARD.md").read_text()
    assert manifest.sha256 in card
    assert "INT8" in card
    assert "Reproduce" in card


def test_onnx_graph_matches_the_manifest_and_keeps_the_heads_fp32(manifest: ModelManifest) -> None:
    check_manifest_matches_onnx(MANIFEST, manifest)
    graph = onnx.load(str(artifact_path(MANIFEST, manifest)))
    names = {i.name for i in graph.graph.initializer}
    assert {"category.weight_Transposed", "urgency.weight_Transposed"} <= names
    assert any(n.op_type == "MatMulInteger" for n in graph.graph.node)  # the transformer is INT8


def test_bundled_model_scores_well_above_chance_on_the_handwritten_notes(model: OnnxNotes) -> None:
    metrics = evaluate(model, load_jsonl(HELDOUT))
    assert metrics.count == 108
    assert metrics.category_macro_f1 >= CATEGORY_FLOOR
    assert metrics.urgency_macro_f1 >= URGENCY_FLOOR


def test_tiny_retrain_of_the_heads_beats_chance_on_handwritten_notes(model: OnnxNotes) -> None:
    """CI retrain: 360 generated notes embedded by the bundled graph, heads refitted in numpy."""
    train = generated(360, seed=123)
    heldout = load_jsonl(HELDOUT)
    _, _, x_train = model.run(train.texts)
    _, _, x_test = model.run(heldout.texts)
    heads = fit_heads(x_train, train.category, train.urgency, len(CATEGORIES), len(URGENCIES), seed=123)
    cat, urg = predict(heads, x_test)
    metrics = score(heldout, cat, urg)
    assert metrics.category_macro_f1 >= TINY_CATEGORY_FLOOR, metrics
    assert metrics.urgency_macro_f1 >= TINY_URGENCY_FLOOR, metrics
    # The same heads on shuffled labels must not: the floors measure learning, not the encoder alone.
    rng = np.random.default_rng(0)
    shuffled = fit_heads(
        x_train, rng.permutation(train.category), rng.permutation(train.urgency), 6, 3, seed=123
    )
    chance = score(heldout, *predict(shuffled, x_test))
    assert chance.category_macro_f1 < TINY_CATEGORY_FLOOR - 0.15


def test_heads_file_round_trips_without_pickle(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    heads = Heads(*(rng.standard_normal(s).astype(np.float32) for s in ((384, 6), (6,), (384, 3), (3,))))
    heads.save(tmp_path / "heads.npz")
    again = Heads.load(tmp_path / "heads.npz")
    assert np.array_equal(again.category_w, heads.category_w)
    assert np.array_equal(again.urgency_b, heads.urgency_b)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"bad\.npz: not a notes heads file"):
        Heads.load(tmp_path / "bad.npz")


def test_int8_graph_agrees_with_the_fp32_torch_encoder(model: OnnxNotes, manifest: ModelManifest) -> None:
    """Parity: the FP32 encoder (torch) with the graph's own FP32 heads vs the INT8 graph."""
    from domain_models.notes.data import combine, model_dir
    from domain_models.notes.encoder import NotesNet, torch_embeddings

    graph = onnx.load(str(artifact_path(MANIFEST, manifest)))
    init = {i.name: onnx.numpy_helper.to_array(i) for i in graph.graph.initializer}
    heads = Heads(
        init["category.weight_Transposed"].astype(np.float32),
        init["category.bias"].astype(np.float32),
        init["urgency.weight_Transposed"].astype(np.float32),
        init["urgency.bias"].astype(np.float32),
    )
    notes = combine(load_jsonl(HELDOUT), generated(300, seed=4242))
    folder = model_dir()
    x32 = torch_embeddings(NotesNet(folder, heads), notes.texts, folder / "tokenizer.json")
    cat8, urg8, x8 = model.run(notes.texts)
    cosine = np.sum(x32 * x8, axis=1)  # both L2-normalised
    assert np.median(cosine) > 0.99
    assert cosine.min() > 0.95
    cat32, urg32 = predict(heads, x32)
    assert np.mean(cat32.argmax(1) == cat8.argmax(1)) >= 0.95
    assert np.mean(urg32.argmax(1) == urg8.argmax(1)) >= 0.9
    m32, m8 = score(notes, cat32, urg32), score(notes, cat8, urg8)
    assert all(g.passed for g in gate_heads(m32, m8, tolerance_points=1.5)), (m32, m8)


def _metrics(category: float, urgency: float) -> NotesMetrics:
    return NotesMetrics(category, urgency, {}, {}, 108)


def test_gate_refuses_int8_that_lost_more_than_the_tolerance_with_the_figures(tmp_path: Path) -> None:
    gates = gate_heads(_metrics(0.80, 0.70), _metrics(0.795, 0.67), tolerance_points=1.0)
    assert [g.passed for g in gates] == [True, False]
    q = QuantizeResult(gates, _metrics(0.80, 0.70), _metrics(0.795, 0.67), tmp_path / "int8.onnx")
    with pytest.raises(PipelineError, match=r"INT8 refused: .*urgency_macro_f1: FP32 0\.7000, INT8 0\.6700"):
        package(q, tmp_path / "fp32.onnx", tmp_path / "tok.json", tmp_path / "out", {}, fallback_fp32=False)
    assert not (tmp_path / "out").exists()


def test_evaluate_command_prints_macro_f1_per_head(capsys: pytest.CaptureFixture[str]) -> None:
    assert factory_models(["evaluate", "--model", str(MANIFEST)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"category macro-F1 0\.\d{4}", out)
    assert re.search(r"urgency  macro-F1 0\.\d{4}", out)
    assert "ms/note" in out
    assert "safety" in out


def test_heldout_notes_are_not_in_the_generators_style() -> None:
    """No hand-written note shares a 4-word run with 5,000 generated notes."""

    def grams(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        return {tuple(words[i : i + 4]) for i in range(len(words) - 3)}

    generated_grams = set().union(*(grams(n.text) for n in NotesLine(seed=0).notes(5000)))
    shared = [t for t in load_jsonl(HELDOUT).texts if grams(t) & generated_grams]
    assert len(shared) <= 5, shared


def test_training_data_hash_is_recorded_in_the_lineage(manifest: ModelManifest) -> None:
    assert manifest.lineage is not None
    assert manifest.lineage.data_sha256 is not None
    assert sha256_file(ARTIFACTS / "tokenizer.json") == manifest.files["tokenizer.json"]
