"""The model manifest: everything the edge runtime needs to run a model without new code.

A manifest sits beside its ONNX artifact (``<name>.manifest.json``). It names the artifact and
its SHA-256, the tensors, the preprocessing, the labels and thresholds, and the metrics the
model was released with.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, ValidationError, model_validator

from protocol.captures import CaptureId
from protocol.drift import DriftReference
from protocol.messages import SCHEMA_VERSION, Name, Sha256Hex, VersionStr, WireModel

MANIFEST_SUFFIX = ".manifest.json"
# Ends each line of a model card that its writer left for a person to fill in; factoryctl refuses
# to push a card that still has one (a version's card cannot change once pushed).
CARD_PROMPT_MARK = "(to fill in)"


class TensorSpec(WireModel):
    """One model input or output. A string dimension (e.g. ``"batch"``) is dynamic."""

    name: str = Field(min_length=1)
    dtype: Literal["float32", "uint8", "int64"] = "float32"
    shape: tuple[int | str, ...]


class Preprocessing(WireModel):
    """How a camera frame (BGR uint8, as OpenCV reads it) becomes the input tensor."""

    resize: tuple[int, int] = Field(description="Target (width, height) in pixels")
    color: Literal["rgb", "bgr", "gray"] = "rgb"
    scale: float = Field(default=1.0 / 255.0, gt=0, description="Multiply pixel values by this first")
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    layout: Literal["NCHW", "NHWC"] = "NCHW"

    @model_validator(mode="after")
    def _channels_match(self) -> Preprocessing:
        channels = 1 if self.color == "gray" else 3
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean and std need {channels} values for color={self.color!r}")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")
        return self


class TextPreprocessing(WireModel):
    """How a text (a maintenance note) becomes token ids, for text models."""

    tokenizer: str = Field(description="tokenizers JSON file beside the manifest (listed in ``files``)")
    max_length: int = Field(ge=1, le=4096, description="Pad or truncate to this many tokens")
    lowercase: bool = Field(default=False, description="Lower-case the text before tokenizing")


class GoldenSample(WireModel):
    """A known input and the output the model must give for it: the OTA smoke test."""

    input: str = Field(description="File beside the manifest (image, or UTF-8 text for text models)")
    expected_label: Name
    expected_scores: dict[str, float] = Field(default_factory=dict, description="Scores to compare")
    tolerance: float = Field(default=0.02, ge=0, le=1, description="Largest allowed score difference")


GOLDEN_FRAMES_KEY = "frames"  # the array of a golden set's .npz: uint8 BGR frames, (N, H, W, 3)


class GoldenReference(WireModel):
    """What the reference model (FP32) gave for one input of a golden set."""

    label: Name
    value: float = Field(description="The output's monotone score (edge_agent.runtime.golden.golden_value)")
    decisive: bool = Field(
        description="Far enough from the decision threshold that another build must give the same label"
    )
    build_value: float = Field(
        description="What this release itself gave for the input on the machine that built it"
    )


class GoldenSet(WireModel):
    """Inputs with the FP32 reference's outputs: checked on the gateway's own CPU before a model serves.

    One golden sample proves a model loads and runs; it cannot tell a kernel that computes a little
    wrong (an INT8 product saturating on a CPU without VNNI) from a sound one. A few dozen inputs
    can: their scores must rank as the reference's did, every decisive input keep its label, and
    no score move further from what this release gave on the machine that built it than
    ``max_build_drift`` (kernels that compute the same integers agree to rounding; a saturating
    one moves scores by several hundredths).
    """

    inputs: str = Field(
        description="File beside the manifest, listed in files: .npz of uint8 BGR frames "
        f"(key {GOLDEN_FRAMES_KEY!r}) for image tasks, a JSON list of texts for text tasks"
    )
    reference: tuple[GoldenReference, ...] = Field(min_length=4, max_length=256)
    reference_model: str = Field(
        min_length=1,
        max_length=200,
        description="Which build gave the reference, e.g. 'defect-patchcore 1.1.0 FP32'",
    )
    min_rank_correlation: float = Field(
        default=0.95, ge=-1.0, le=1.0, description="Least Spearman correlation of values with the reference's"
    )
    max_disagreements: int = Field(default=0, ge=0, description="Most decisive inputs allowed another label")
    max_build_drift: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Largest difference of a value from its build_value"
    )


class Lineage(WireModel):
    """Where a model version came from."""

    parent_version: VersionStr | None = None
    data_sha256: Sha256Hex | None = Field(default=None, description="Hash of the training data listing")
    code_commit: str | None = Field(default=None, max_length=64, description="Source commit of the trainer")
    dataset_id: CaptureId | None = Field(default=None, description="The cloud dataset the data came from")
    seed: int | None = Field(default=None, description="The training run's seed (split, coreset)")


Task = Literal["defect", "classification", "parcels", "notes"]
IMAGE_TASKS: frozenset[str] = frozenset({"defect", "classification", "parcels"})
TEXT_TASKS: frozenset[str] = frozenset({"notes"})


class ModelManifest(WireModel):
    """A model release: artifact identity, I/O contract, preprocessing, labels and metrics."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Name
    version: VersionStr
    task: Task
    description: str = ""
    artifact: str = Field(min_length=1, description="ONNX file name, relative to the manifest")
    sha256: Sha256Hex
    size_bytes: int = Field(ge=1)
    files: dict[str, Sha256Hex] = Field(
        default_factory=dict, description="Other files of the release beside the manifest, with their hashes"
    )
    inputs: tuple[TensorSpec, ...] = Field(min_length=1)
    outputs: tuple[TensorSpec, ...] = Field(min_length=1)
    preprocessing: Preprocessing | None = Field(default=None, description="Image tasks: frame -> tensor")
    text: TextPreprocessing | None = Field(default=None, description="Text tasks: note -> token ids")
    golden: GoldenSample | None = None
    golden_set: GoldenSet | None = Field(default=None, description="Checked on install on the gateway's CPU")
    drift: DriftReference | None = Field(
        default=None, description="The fit-time look the gateway compares live frames with (protocol.drift)"
    )
    lineage: Lineage | None = None
    labels: tuple[Name, ...] = Field(min_length=1)
    good_label: Name | None = Field(default=None, description="The label that means 'no defect'")
    thresholds: dict[Name, float] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: AwareDatetime

    @model_validator(mode="after")
    def _consistent(self) -> ModelManifest:
        if "/" in self.artifact or "\\" in self.artifact or self.artifact.startswith("."):
            raise ValueError(f"artifact {self.artifact!r} must be a plain file name beside the manifest")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        if self.good_label is not None and self.good_label not in self.labels:
            raise ValueError(f"good_label {self.good_label!r} is not one of labels {list(self.labels)}")
        if self.task == "defect" and self.good_label is None:
            raise ValueError("a defect model must name its good_label")
        if self.task in IMAGE_TASKS and self.preprocessing is None:
            raise ValueError(f"a {self.task} model needs image 'preprocessing'")
        if self.task in TEXT_TASKS and self.text is None:
            raise ValueError(f"a {self.task} model needs 'text' preprocessing")
        for name in [*self.files, *([self.golden.input] if self.golden else [])]:
            if "/" in name or "\\" in name or name.startswith("."):
                raise ValueError(f"file {name!r} must be a plain file name beside the manifest")
        if self.golden_set is not None and self.golden_set.inputs not in self.files:
            raise ValueError(f"golden_set.inputs {self.golden_set.inputs!r} must be listed in files")
        if self.text is not None and self.text.tokenizer not in self.files:
            raise ValueError(f"text.tokenizer {self.text.tokenizer!r} must be listed in files")
        return self


class ManifestError(ValueError):
    """A manifest or artifact that cannot be used; the message names the file and the problem."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so large artifacts do not fill memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(path: Path, verify_artifact: bool = True) -> ModelManifest:
    """Read and validate a manifest; with ``verify_artifact`` also check the artifact's size and hash."""
    try:
        manifest = ModelManifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest file not found") from None
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ManifestError(f"{path}: invalid manifest: {details}") from None
    if verify_artifact:
        artifact = artifact_path(path, manifest)
        if not artifact.is_file():
            raise ManifestError(f"{path}: artifact {artifact} not found")
        size = artifact.stat().st_size
        if size != manifest.size_bytes:
            raise ManifestError(f"{artifact}: size {size} bytes, manifest says {manifest.size_bytes}")
        actual = sha256_file(artifact)
        if actual != manifest.sha256:
            raise ManifestError(f"{artifact}: sha256 {actual} does not match manifest {manifest.sha256}")
        for name, expected in manifest.files.items():
            extra = path.parent / name
            if not extra.is_file():
                raise ManifestError(f"{path}: file {extra} not found")
            if sha256_file(extra) != expected:
                raise ManifestError(f"{extra}: sha256 does not match the manifest")
    return manifest


def artifact_path(manifest_path: Path, manifest: ModelManifest) -> Path:
    """Where the artifact of the manifest at ``manifest_path`` lives."""
    return manifest_path.parent / manifest.artifact
