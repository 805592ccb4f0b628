"""The model manifest: validated on load, and the artifact must match its declared size and hash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from protocol.manifest import ManifestError, ModelManifest, load_manifest, sha256_file
from tests.support.strategies import names, versions


def _manifest_dict(artifact: Path) -> dict[str, Any]:
    return {
        "name": "defect-cnn",
        "version": "1.0.0",
        "task": "defect",
        "artifact": artifact.name,
        "sha256": sha256_file(artifact),
        "size_bytes": artifact.stat().st_size,
        "inputs": [{"name": "image", "shape": ["batch", 3, 96, 96]}],
        "outputs": [{"name": "probs", "shape": ["batch", 2]}],
        "preprocessing": {"resize": [96, 96], "color": "rgb"},
        "labels": ["good", "scratch"],
        "good_label": "good",
        "thresholds": {"defect": 0.5},
        "created_at": datetime.now(UTC).isoformat(),
    }


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"not really onnx, but bytes with a hash")
    return path


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "m.manifest.json"
    path.write_text(json.dumps(data))
    return path


def test_valid_manifest_loads(tmp_path: Path, artifact: Path) -> None:
    manifest = load_manifest(_write(tmp_path, _manifest_dict(artifact)))
    assert manifest.preprocessing.resize == (96, 96)
    assert manifest.preprocessing.layout == "NCHW"


def test_flipped_byte_in_artifact_is_refused(tmp_path: Path, artifact: Path) -> None:
    path = _write(tmp_path, _manifest_dict(artifact))
    data = bytearray(artifact.read_bytes())
    data[3] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="sha256 .* does not match"):
        load_manifest(path)


def test_truncated_artifact_is_refused_by_size(tmp_path: Path, artifact: Path) -> None:
    path = _write(tmp_path, _manifest_dict(artifact))
    artifact.write_bytes(artifact.read_bytes()[:-1])
    with pytest.raises(ManifestError, match="size"):
        load_manifest(path)


def test_missing_artifact_named(tmp_path: Path, artifact: Path) -> None:
    path = _write(tmp_path, _manifest_dict(artifact))
    artifact.unlink()
    with pytest.raises(ManifestError, match="m.onnx not found"):
        load_manifest(path)


def test_missing_manifest_named(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest file not found"):
        load_manifest(tmp_path / "nope.manifest.json")


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("good_label", "perfect", "good_label 'perfect' is not one of labels"),
        ("good_label", None, "must name its good_label"),
        ("artifact", "../evil.onnx", "plain file name"),
        ("labels", ["good", "good"], "labels must be unique"),
        ("preprocessing", {"resize": [96, 96], "color": "gray"}, "mean and std need 1 values"),
        ("task", "poetry", "task"),
        ("version", "v1", "version"),
        ("unknown_key", 1, "unknown_key"),
    ],
)
def test_inconsistent_manifest_refused(
    tmp_path: Path, artifact: Path, key: str, value: Any, reason: str
) -> None:
    data = _manifest_dict(artifact)
    data[key] = value
    with pytest.raises(ManifestError, match=reason) as info:
        load_manifest(_write(tmp_path, data))
    assert str(tmp_path) in str(info.value)


@given(names, versions)
def test_manifest_round_trips(name: str, version: str) -> None:
    manifest = ModelManifest(
        name=name,
        version=version,
        task="classification",
        artifact="x.onnx",
        sha256="0" * 64,
        size_bytes=1,
        inputs=({"name": "x", "shape": ("batch", 4)},),  # type: ignore[arg-type]
        outputs=({"name": "y", "shape": ("batch", 2)},),  # type: ignore[arg-type]
        preprocessing={"resize": (8, 8)},  # type: ignore[arg-type]
        labels=("a", "b"),
        created_at=datetime.now(UTC),
    )
    assert ModelManifest.model_validate_json(manifest.model_dump_json()) == manifest


def test_text_model_needs_text_preprocessing_and_listed_tokenizer(tmp_path: Path, artifact: Path) -> None:
    data = _manifest_dict(artifact) | {"task": "notes", "good_label": None, "preprocessing": None}
    with pytest.raises(ManifestError, match="needs 'text' preprocessing"):
        load_manifest(_write(tmp_path, data))
    data["text"] = {"tokenizer": "tokenizer.json", "max_length": 64}
    with pytest.raises(ManifestError, match="must be listed in files"):
        load_manifest(_write(tmp_path, data))


def test_extra_files_are_verified_like_the_artifact(tmp_path: Path, artifact: Path) -> None:
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text("{}")
    data = _manifest_dict(artifact) | {
        "task": "notes",
        "good_label": None,
        "preprocessing": None,
        "text": {"tokenizer": "tokenizer.json", "max_length": 64},
        "files": {"tokenizer.json": sha256_file(tokenizer)},
    }
    path = _write(tmp_path, data)
    assert load_manifest(path).text is not None
    tokenizer.write_text('{"tampered": true}')
    with pytest.raises(ManifestError, match="tokenizer.json: sha256 does not match"):
        load_manifest(path)
    tokenizer.unlink()
    with pytest.raises(ManifestError, match="not found"):
        load_manifest(path)


def test_image_model_needs_image_preprocessing(tmp_path: Path, artifact: Path) -> None:
    data = _manifest_dict(artifact) | {"preprocessing": None}
    with pytest.raises(ManifestError, match="needs image 'preprocessing'"):
        load_manifest(_write(tmp_path, data))


def _golden_set(inputs: str, count: int = 4) -> dict[str, Any]:
    return {
        "inputs": inputs,
        "reference": [
            {"label": "good", "value": 0.1 * i, "decisive": True, "build_value": 0.1 * i}
            for i in range(count)
        ],
        "reference_model": "defect-cnn 1.0.0",
    }


def test_golden_set_inputs_must_be_a_listed_and_hashed_file(tmp_path: Path, artifact: Path) -> None:
    data = _manifest_dict(artifact) | {"golden_set": _golden_set("golden-set.npz")}
    with pytest.raises(ManifestError, match=r"golden_set\.inputs 'golden-set\.npz' must be listed in files"):
        load_manifest(_write(tmp_path, data))
    inputs = tmp_path / "golden-set.npz"
    inputs.write_bytes(b"frames")
    data["files"] = {"golden-set.npz": sha256_file(inputs)}
    manifest = load_manifest(_write(tmp_path, data))
    assert manifest.golden_set is not None
    assert manifest.golden_set.min_rank_correlation == 0.95  # the default tolerance, stated in the manifest
    inputs.write_bytes(b"other frames")
    with pytest.raises(ManifestError, match="golden-set.npz: sha256 does not match"):
        load_manifest(_write(tmp_path, data))


def test_golden_set_needs_a_few_inputs(tmp_path: Path, artifact: Path) -> None:
    data = _manifest_dict(artifact) | {"golden_set": _golden_set("golden-set.npz", count=3)}
    with pytest.raises(ManifestError, match="golden_set.reference"):
        load_manifest(_write(tmp_path, data))
