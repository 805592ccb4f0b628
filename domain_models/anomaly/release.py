"""Write an anomaly model's release files: manifest, calibration record and golden sample (no torch).

<stem>.onnx               the graph
<stem>.manifest.json      protocol.manifest.ModelManifest
<stem>.calibration.json   which held-out good images set the threshold, at which false-reject rate
<stem>.golden.png         the OTA smoke test's input; expected output in the manifest
<ref>.golden-set.npz      optional: the golden set checked on the gateway's CPU (domain_models.golden_set)
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from domain_models import drift_reference, golden_set
from domain_models.anomaly.data import read_image
from domain_models.common import PipelineError, artifact_fields
from edge_agent.frames import Frame
from edge_agent.runtime.model import ModelRunner
from protocol.inference import ANOMALY_LABELS, DEFECT_KEY, GOOD_LABEL
from protocol.manifest import (
    MANIFEST_SUFFIX,
    GoldenSample,
    Lineage,
    ModelManifest,
    Preprocessing,
    sha256_file,
)
from protocol.messages import DefectOutput, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    """How the threshold was set: held-out good images (relative to the data folder) and the target FRR."""

    frr: float
    threshold: float
    holdout: tuple[str, ...]  # never fitted on: a re-calibration or drift reference may use them
    seed: int
    # > 0: the threshold also counts the train/good images, each scored by a model fit on the
    # other folds (cross-fitting), so they set it without being held out of the released model.
    folds: int = 0
    cross_fitted: int = 0  # train/good images scored that way

    @property
    def threshold_images(self) -> int:
        """How many good images' scores set the threshold."""
        return len(self.holdout) + self.cross_fitted

    def write(self, path: Path) -> None:
        """As JSON."""
        data = {
            "frr": self.frr,
            "threshold": self.threshold,
            "holdout": list(self.holdout),
            "seed": self.seed,
            "folds": self.folds,
            "cross_fitted": self.cross_fitted,
            "threshold_images": self.threshold_images,
        }
        path.write_text(json.dumps(data, indent=2) + "\n")

    @staticmethod
    def read(path: Path) -> Calibration:
        """From JSON written by :meth:`write`."""
        data = json.loads(path.read_text())
        return Calibration(
            float(data["frr"]),
            float(data["threshold"]),
            tuple(data["holdout"]),
            int(data["seed"]),
            int(data.get("folds", 0)),  # records written before cross-fitting have neither
            int(data.get("cross_fitted", 0)),
        )


def write_release(
    onnx_path: Path,
    *,
    name: str,
    version: str,
    spec: Preprocessing,
    calibration: Calibration,
    metrics: dict[str, float],
    golden_image: Path | None,
    description: str,
    data_sha256: str | None = None,
    parent_version: str | None = None,
    dataset_id: str | None = None,
    labels: tuple[str, ...] = ANOMALY_LABELS,
    extra_thresholds: dict[str, float] | None = None,
    golden_set_images: Sequence[Path] = (),
    golden_set_reference: Path | None = None,
    drift_images: Sequence[Path] = (),
) -> Path:
    """Write the manifest (with golden sample computed by the edge runtime itself); returns its path.

    With ``golden_set_images`` the release also carries a golden set of up to 32 of them, spread
    over the sorted list, with ``golden_set_reference``'s outputs (default: the release's own).
    With ``drift_images`` (held-out good images) it carries a drift reference computed on half of
    them, its thresholds on the other half, when there are enough (domain_models.drift_reference).
    """
    out = onnx_path.parent
    stem = onnx_path.name.removesuffix(".onnx")
    calib_path = out / f"{stem}.calibration.json"
    calibration.write(calib_path)
    files = {calib_path.name: sha256_file(calib_path)}
    golden_name = None
    if golden_image is not None:
        golden_name = f"{stem}.golden.png"
        if golden_image.suffix.lower() == ".png":
            shutil.copyfile(golden_image, out / golden_name)
        else:  # re-encode losslessly so the file is what the smoke test reads
            import cv2

            cv2.imwrite(str(out / golden_name), read_image(golden_image))
        files[golden_name] = sha256_file(out / golden_name)
    manifest = ModelManifest(
        **artifact_fields(onnx_path),
        name=name,
        version=version,
        task="defect",
        description=description,
        files=files,
        preprocessing=spec,
        lineage=Lineage(
            parent_version=parent_version,
            data_sha256=data_sha256,
            dataset_id=dataset_id,
            seed=calibration.seed,
        ),
        labels=labels,
        good_label=GOOD_LABEL,
        thresholds={**(extra_thresholds or {}), DEFECT_KEY: calibration.threshold},
        metrics=metrics,
        created_at=utcnow(),
    )
    manifest_path = out / f"{stem}{MANIFEST_SUFFIX}"
    manifest_path.write_text(manifest.model_dump_json(indent=2) + "\n")
    if golden_name is not None:
        # The expected output is whatever the gateway's own runtime says for this exact file.
        runner = ModelRunner(manifest_path, slot="golden")
        image = read_image(out / golden_name)
        result = runner.infer([Frame("golden", golden_name, utcnow(), np.asarray(image))])[0].output
        if not isinstance(result, DefectOutput):
            raise PipelineError(
                f"{manifest_path}: the runtime read it as {result.kind!r}, not a defect model"
            )
        golden = GoldenSample(
            input=golden_name,
            expected_label=result.label,
            expected_scores={k: round(v, 4) for k, v in result.scores.items()},
            tolerance=0.02,
        )
        manifest = manifest.model_copy(update={"golden": golden})
        manifest_path.write_text(manifest.model_dump_json(indent=2) + "\n")
    if golden_set_images:
        chosen = golden_set.pick(sorted(golden_set_images), golden_set.COUNT)
        golden_set.attach(manifest_path, [read_image(p) for p in chosen], golden_set_reference)
    if drift_images:
        _attach_drift(manifest_path, drift_images, calibration.seed)
    log.info("wrote %s", manifest_path)
    return manifest_path


def _attach_drift(manifest_path: Path, held_out: Sequence[Path], seed: int) -> None:
    split = drift_reference.split_held_out(held_out)
    if split is None:
        log.warning(
            "%s: no drift reference: %d held-out good images, at least %d are needed "
            "(add good images to DATA/calibration/good)",
            manifest_path.name,
            len(held_out),
            2 * drift_reference.MIN_FRAMES,
        )
        return
    drift_reference.attach(manifest_path, split[0], split[1], seed)


def data_listing_sha256(paths: list[Path], root: Path) -> str:
    """Hash of the training listing (relative names + file hashes): the manifest's lineage."""
    import hashlib

    digest = hashlib.sha256()
    for p in paths:
        digest.update(f"{p.relative_to(root).as_posix()} {sha256_file(p)}\n".encode())
    return digest.hexdigest()
