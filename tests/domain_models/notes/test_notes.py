"""The bundled notes model: manifest and graph, hand-written data, a tiny CI retrain, parity and the gate."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest

import domain_models.notes
from domain_models.cli import main as factory_models
from domain_models.common import PipelineError, check_manifest_matches_onnx
from domain_models.notes.data import (
    DEV,
    MAX_LENGTH,
    TEST,
    LabelledNotes,
    check_splits,
    generated,
    hand_written,
    load_jsonl,
)
from domain_models.notes.evaluate import NotesMetrics, OnnxNotes, evaluate, score
from domain_models.notes.gate import QuantizeResult, VariantReport
from domain_models.notes.head import Heads, fit_heads, predict
from domain_models.notes.quant import VARIANTS
from domain_models.notes.release import gate_heads
from domain_models.notes.train import package
from protocol.inference import NOTE_CATEGORIES, NOTE_URGENCIES
from protocol.manifest import ModelManifest, artifact_path, load_manifest, sha256_file
from simulators.notes_line import NotesLine

ARTIFACTS = Path(domain_models.notes.__file__).parent / "artifacts"
MANIFEST = ARTIFACTS / "notes-minilm-1.1.0.manifest.json"
# Chance macro-F1 is ~0.17 (6 categories) and ~0.33 (3 urgencies). The card reports ~0.82 / ~0.67
# on the hand-written DEV notes; these floors leave room for noise, not for a broken model.
CATEGORY_FLOOR, URGENCY_FLOOR = 0.65, 0.55
TINY_CATEGORY_FLOOR, TINY_URGENCY_FLOOR = 0.5, 0.45


@pytest.fixture(scope="module")
def manifest() -> ModelManifest:
    return load_manifest(MANIFEST)  # also checks artifact, tokenizer and golden hashes


@pytest.fixture(scope="module")
def model(manifest: ModelManifest) -> OnnxNotes:
    assert manifest.text is not None
    return OnnxNotes(artifact_path(MANIFEST, manifest), ARTIFACTS / manifest.text.tokenizer, MAX_LENGTH)


def test_manifest_describes_a_small_release_gated_on_handwritten_notes(manifest: ModelManifest) -> None:
    onnx_file = artifact_path(MANIFEST, manifest)
    assert (manifest.task, manifest.labels) == ("notes", NOTE_CATEGORIES)
    assert manifest.thresholds == {f"urgency.{u}": float(i) for i, u in enumerate(NOTE_URGENCIES)}
    assert manifest.text is not None
    assert manifest.text.tokenizer in manifest.files
    assert manifest.size_bytes == onnx_file.stat().st_size < 30_000_000  # int8 weights; FP32 is ~90 MB
    assert manifest.metrics["dev_category_macro_f1"] >= CATEGORY_FLOOR
    assert manifest.metrics["dev_urgency_macro_f1"] >= URGENCY_FLOOR
    assert {"test_category_macro_f1", "test_urgency_macro_f1"} <= set(manifest.metrics)
    assert manifest.lineage is not None
    assert manifest.lineage.parent_version == "1.0.0"
    assert not list(ARTIFACTS.glob("*fp32*"))  # the gateway needs only the shipped graph
    card = (ARTIFACTS / "MODEL_CARD.md").read_text()
    assert manifest.sha256 in card
    assert "hand-written DEV notes" in card
    assert "TEST (reported only)" in card
    assert "Reproduce" in card


def test_onnx_graph_matches_the_manifest_stores_int8_weights_and_keeps_the_heads_fp32(
    manifest: ModelManifest,
) -> None:
    check_manifest_matches_onnx(MANIFEST, manifest)
    graph = onnx.load(str(artifact_path(MANIFEST, manifest)))
    init = {i.name: i for i in graph.graph.initializer}
    assert init["category.weight"].data_type == onnx.TensorProto.FLOAT
    assert init["urgency.weight"].data_type == onnx.TensorProto.FLOAT
    int8_values = sum(int(np.prod(i.dims)) for i in init.values() if i.data_type == onnx.TensorProto.INT8)
    assert int8_values > 20_000_000  # embedding table + transformer weights (22.7 M params in all)


def test_bundled_model_scores_well_above_chance_on_the_handwritten_dev_notes(model: OnnxNotes) -> None:
    metrics = evaluate(model, load_jsonl(DEV))
    assert metrics.count == 234
    assert metrics.category_macro_f1 >= CATEGORY_FLOOR
    assert metrics.urgency_macro_f1 >= URGENCY_FLOOR


def test_handwritten_sets_are_valid_balanced_and_disjoint() -> None:
    dev, test = hand_written()  # labels checked by load_jsonl, duplicates and overlap by check_splits
    assert len(dev) >= 234
    assert len(test) >= 300
    for notes in (dev, test):
        cells = np.bincount(notes.category * len(NOTE_URGENCIES) + notes.urgency, minlength=18)
        assert cells.min() >= 10, cells  # every category x urgency pair is represented
    assert not {t.lower() for t in dev.texts} & {t.lower() for t in test.texts}


def test_duplicate_or_shared_notes_are_refused_naming_the_split_and_note() -> None:
    one = LabelledNotes(["Pump P3 leaking", "belt worn"], np.array([2, 1]), np.array([1, 0]))
    other = LabelledNotes(["fuse blown", "PUMP  p3 leaking"], np.array([0, 2]), np.array([2, 1]))
    with pytest.raises(
        ValueError, match=r"TEST note 2 'PUMP  p3 leaking' duplicates a note of DEV \(note 1\)"
    ):
        check_splits(one, other)
    twice = LabelledNotes(["belt worn", "Belt worn"], np.array([1, 1]), np.array([0, 0]))
    with pytest.raises(ValueError, match=r"DEV note 2"):
        check_splits(twice, other)


def test_a_bad_label_in_a_notes_file_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    good = '{"text": "belt worn", "category": "mechanical", "urgency": "low"}'
    path.write_text(good + "\n" + '{"text": "x", "category": "plumbing", "urgency": "low"}\n')
    with pytest.raises(ValueError, match=r"notes\.jsonl:2: need JSON with text, category in"):
        load_jsonl(path)


def test_tiny_retrain_of_the_heads_beats_chance_on_handwritten_notes(model: OnnxNotes) -> None:
    """CI retrain: 360 generated notes embedded by the bundled graph, heads refitted in numpy."""
    train = generated(360, seed=123)
    dev = load_jsonl(DEV)
    _, _, x_train = model.run(train.texts)
    _, _, x_test = model.run(dev.texts)
    heads = fit_heads(
        x_train, train.category, train.urgency, len(NOTE_CATEGORIES), len(NOTE_URGENCIES), seed=123
    )
    cat, urg = predict(heads, x_test)
    metrics = score(dev, cat, urg)
    assert metrics.category_macro_f1 >= TINY_CATEGORY_FLOOR, metrics
    assert metrics.urgency_macro_f1 >= TINY_URGENCY_FLOOR, metrics
    # The same heads on shuffled labels must not: the floors measure learning, not the encoder alone.
    rng = np.random.default_rng(0)
    shuffled = fit_heads(
        x_train, rng.permutation(train.category), rng.permutation(train.urgency), 6, 3, seed=123
    )
    chance = score(dev, *predict(shuffled, x_test))
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


def test_shipped_graph_agrees_with_the_fp32_torch_encoder(model: OnnxNotes, manifest: ModelManifest) -> None:
    """Parity: the FP32 encoder (torch) with the graph's own FP32 heads vs the shipped graph."""
    from domain_models.notes.data import combine, model_dir
    from domain_models.notes.encoder import NotesNet, torch_embeddings

    graph = onnx.load(str(artifact_path(MANIFEST, manifest)))
    init = {i.name: onnx.numpy_helper.to_array(i) for i in graph.graph.initializer}
    heads = Heads(  # the heads are Gemm(transB=1): weights stored classes x 384
        init["category.weight"].T.astype(np.float32),
        init["category.bias"].astype(np.float32),
        init["urgency.weight"].T.astype(np.float32),
        init["urgency.bias"].astype(np.float32),
    )
    notes = combine(load_jsonl(DEV), generated(300, seed=4242))
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


def _report(name: str, fp32: NotesMetrics, int8: NotesMetrics, tmp_path: Path) -> VariantReport:
    return VariantReport(VARIANTS[name], tmp_path / f"{name}.onnx", int8, gate_heads(fp32, int8, 1.0), 1)


def test_gate_refuses_a_variant_that_flips_handwritten_notes_beyond_the_tolerance(tmp_path: Path) -> None:
    """Constructed case on the real DEV labels: FP32 right on every note, INT8 wrong on 6 urgencies."""
    dev = load_jsonl(DEV)
    eye_c, eye_u = (
        np.eye(len(NOTE_CATEGORIES), dtype=np.float32),
        np.eye(len(NOTE_URGENCIES), dtype=np.float32),
    )
    fp32 = score(dev, eye_c[dev.category], eye_u[dev.urgency])
    flipped = dev.urgency.copy()
    flipped[:6] = (flipped[:6] + 1) % len(NOTE_URGENCIES)
    int8 = score(dev, eye_c[dev.category], eye_u[flipped])
    gates = gate_heads(fp32, int8, tolerance_points=1.0)
    assert [g.passed for g in gates] == [True, False]
    assert gates[1].drop_points > 1.0
    q = QuantizeResult(fp32, [_report("full", fp32, int8, tmp_path)])
    assert q.chosen is None
    with pytest.raises(
        PipelineError, match=r"INT8 refused: .*urgency_macro_f1: FP32 1\.0000, INT8 0\.9\d{3}"
    ):
        package(q, tmp_path / "fp32.onnx", tmp_path / "tok.json", tmp_path / "out", {}, fallback_fp32=False)
    assert not (tmp_path / "out").exists()
    # One note flipped is within a point on 234 notes: the gate passes the next variant tried.
    one = dev.urgency.copy()
    one[0] = (one[0] + 1) % len(NOTE_URGENCIES)
    close = score(dev, eye_c[dev.category], eye_u[one])
    q2 = QuantizeResult(
        fp32, [_report("full", fp32, int8, tmp_path), _report("weights-only", fp32, close, tmp_path)]
    )
    assert q2.chosen is not None
    assert q2.chosen.scope.name == "weights-only"


def test_the_bundled_model_is_refused_when_the_gate_demands_a_gain(model: OnnxNotes) -> None:
    metrics = evaluate(model, load_jsonl(DEV))
    gates = gate_heads(metrics, metrics, tolerance_points=-0.5)  # negative tolerance: INT8 must beat FP32
    assert not any(g.passed for g in gates)
    assert "EXCEEDS tolerance -0.50" in gates[0].describe()


def test_evaluate_command_prints_macro_f1_per_head(capsys: pytest.CaptureFixture[str]) -> None:
    assert factory_models(["evaluate", "--model", str(MANIFEST), "--data", str(TEST)]) == 0
    out = capsys.readouterr().out
    assert "test.jsonl (312 notes)" in out
    assert re.search(r"category macro-F1 0\.\d{4}", out)
    assert re.search(r"urgency  macro-F1 0\.\d{4}", out)
    assert "ms/note" in out
    assert "safety" in out


def test_quantize_command_refuses_an_unknown_variant(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        factory_models(["quantize", "notes", "--model", "x.onnx", "--out", "o", "--variants", "full,bogus"])
    assert "unknown variant(s) ['bogus']" in capsys.readouterr().err


def test_handwritten_notes_are_not_in_the_generators_style() -> None:
    """Few hand-written notes share a 4-word run with 5,000 generated notes."""

    def grams(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        return {tuple(words[i : i + 4]) for i in range(len(words) - 3)}

    generated_grams = set().union(*(grams(n.text) for n in NotesLine(seed=0).notes(5000)))
    for path in (DEV, TEST):
        texts = load_jsonl(path).texts
        shared = [t for t in texts if grams(t) & generated_grams]
        assert len(shared) <= 0.03 * len(texts), (path.name, shared)


def test_training_data_hash_is_recorded_in_the_lineage(manifest: ModelManifest) -> None:
    assert manifest.lineage is not None
    assert manifest.lineage.data_sha256 is not None
    assert sha256_file(ARTIFACTS / "tokenizer.json") == manifest.files["tokenizer.json"]


def _one_matmul_graph(path: Path, weight: np.ndarray) -> None:
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node(
        "MatMul", ["x", "w"], ["y"], name="/encoder/encoder/layer.0/attention/self/query/MatMul"
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, weight.shape[1]])],
        [numpy_helper.from_array(weight, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_weights_only_variant_stores_int8_and_computes_close_to_fp32(tmp_path: Path) -> None:
    import onnxruntime as ort

    from domain_models.notes.quant import Scope, build

    rng = np.random.default_rng(3)
    weight = rng.standard_normal((16, 8)).astype(np.float32)
    _one_matmul_graph(tmp_path / "fp32.onnx", weight)
    scope = Scope("q0", parts=("query",), layers=(0,), embedding="fp32", compute="fp32")
    build(tmp_path / "fp32.onnx", tmp_path / "w8.onnx", scope)
    inits = onnx.load(str(tmp_path / "w8.onnx")).graph.initializer
    assert [i.data_type for i in inits if i.name == "w_w8"] == [onnx.TensorProto.INT8]
    assert "w" not in {i.name for i in inits}  # the FP32 weight is gone, not kept beside the int8 copy
    x = rng.standard_normal((1, 16)).astype(np.float32)
    (y,) = ort.InferenceSession(str(tmp_path / "w8.onnx")).run(None, {"x": x})
    expected = x @ weight
    # int8 per column: each weight off by <= scale/2 = max|w|/254, so y is off by about sqrt(16) of those.
    assert np.max(np.abs(y - expected)) < 0.05 * np.max(np.abs(expected))
    assert not np.allclose(y, expected, atol=1e-7)  # it really was rounded


def test_a_variant_naming_a_missing_or_unknown_matmul_is_refused(tmp_path: Path) -> None:
    from domain_models.notes.quant import Scope, build

    _one_matmul_graph(tmp_path / "fp32.onnx", np.ones((4, 2), np.float32))
    scope = Scope("k0", parts=("key",), layers=(0,), embedding="fp32", compute="fp32")
    with pytest.raises(
        PipelineError,
        match=r"quantize k0: .*fp32\.onnx has no MatMul node '/encoder/encoder/layer\.0/attention/self/key/MatMul'",
    ):
        build(tmp_path / "fp32.onnx", tmp_path / "out.onnx", scope)
    with pytest.raises(ValueError, match=r"scope 'bad': unknown parts \['ffn'\]"):
        Scope("bad", parts=("ffn",))
    with pytest.raises(ValueError, match=r"scope 'bad': layers \[6\] outside 0\.\.5"):
        Scope("bad", layers=(6,))
