"""The parcel release's optional damage crop classifier: rectified crops of each parcel -> P(damaged).

A release may ship a second ONNX graph beside the detector, listed in the manifest's ``files`` as
``parcel-damage*.onnx`` (sha256-verified like the route table), with its cut-off in
``thresholds["damage_crop"]``. Each parcel wholly in view is cut out along its oriented box,
rotated upright (length along x) and resized to :data:`CROP_SIZE`; the crops of one frame run as
one batch. The runner averages a parcel's crop scores over the frames it saw it and flags the
parcel when the mean reaches the cut-off. A release without the file keeps the detector's map.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.frames import Image
from edge_agent.runtime.model import ModelLoadError, open_session
from protocol.inference import DAMAGE_INPUT, DAMAGE_OUTPUT, DAMAGE_PREFIX, DAMAGE_THRESHOLD
from protocol.manifest import ModelManifest, TensorSpec

log = logging.getLogger(__name__)

CROP_SIZE = (96, 64)  # (width, height): boxes are 1-2.2x longer than wide, length along x
CROP_MARGIN = 1.08  # a little belt around the box, so a notched (crushed) corner shows as a notch
EDGE_PX = 4  # a box closer than this to the frame's left/right edge is cut off: not wholly in view
INPUT = TensorSpec(name=DAMAGE_INPUT, dtype="float32", shape=("batch", 3, CROP_SIZE[1], CROP_SIZE[0]))
OUTPUT = TensorSpec(name=DAMAGE_OUTPUT, dtype="float32", shape=("batch", 1))

Box = tuple[tuple[float, float], tuple[float, float], float]  # (centre, (length, width), angle_deg)


def in_view(box: Box, frame_width: int) -> bool:
    """Whether the box lies wholly within the frame along the belt (the runner's own rule)."""
    (cx, _), (length, _), _ = box
    return cx - length / 2 >= EDGE_PX and cx + length / 2 <= frame_width - EDGE_PX


def rectify(image: Image, box: Box) -> Image:
    """The box cut out upright (length along x) and resized to ``CROP_SIZE``, BGR uint8."""
    (cx, cy), (length, width), angle = box
    out_w, out_h = CROP_SIZE
    sx, sy = out_w / max(length * CROP_MARGIN, 1.0), out_h / max(width * CROP_MARGIN, 1.0)
    # Rotate about the centre so the length axis is horizontal, then scale each axis on its own
    # and move the centre to the crop's centre: one affine map, one resampling.
    rot = np.vstack([cv2.getRotationMatrix2D((cx, cy), angle, 1.0), [0.0, 0.0, 1.0]])
    m = (np.diag([sx, sy, 1.0]) @ rot)[:2]
    m[0, 2] += out_w / 2 - sx * cx
    m[1, 2] += out_h / 2 - sy * cy
    crop = cv2.warpAffine(image, m, CROP_SIZE, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(crop, np.uint8)


def to_batch(crops: Sequence[Image]) -> npt.NDArray[np.float32]:
    """BGR uint8 crops -> (N, 3, H, W) RGB float32 in [0, 1], the classifier's input."""
    if not crops:
        return np.zeros((0, 3, CROP_SIZE[1], CROP_SIZE[0]), np.float32)
    stack = np.stack([c[..., ::-1] for c in crops]).astype(np.float32) / 255.0
    return np.ascontiguousarray(stack.transpose(0, 3, 1, 2))


def damage_file(manifest_path: Path, manifest: ModelManifest) -> str | None:
    """The release's ``parcel-damage*.onnx`` file name, None without one; two are refused."""
    names = [n for n in manifest.files if n.startswith(DAMAGE_PREFIX) and n.endswith(".onnx")]
    if len(names) > 1:
        raise ModelLoadError(
            f"{manifest_path}: files lists {len(names)} damage classifiers {names}, expected one"
        )
    return names[0] if names else None


class DamageClassifier:
    """The crop classifier's ONNX session and its cut-off."""

    def __init__(self, manifest_path: Path, manifest: ModelManifest, name: str, threads: int) -> None:
        where = f"{manifest_path} ({name})"
        if DAMAGE_THRESHOLD not in manifest.thresholds:
            raise ModelLoadError(
                f"{where}: thresholds[{DAMAGE_THRESHOLD!r}] is required with a damage classifier"
            )
        self.threshold = float(manifest.thresholds[DAMAGE_THRESHOLD])
        # open_session checks the graph against these specs, so a wrong file is refused by name.
        view = manifest.model_copy(update={"artifact": name, "inputs": (INPUT,), "outputs": (OUTPUT,)})
        try:
            self._session = open_session(manifest_path, view, threads)
        except ModelLoadError as exc:
            raise ModelLoadError(f"damage classifier {name}: {exc}") from None
        self.name = name

    @classmethod
    def from_release(
        cls, manifest_path: Path, manifest: ModelManifest, threads: int
    ) -> DamageClassifier | None:
        """The classifier of a release, or None when it ships none (the detector's map scores damage)."""
        name = damage_file(manifest_path, manifest)
        if name is None:
            return None
        classifier = cls(manifest_path, manifest, name, threads)
        log.info("%s: damage crop classifier %s, cut-off %.3f", manifest_path, name, classifier.threshold)
        return classifier

    def scores(self, crops: Sequence[Image]) -> npt.NDArray[np.float32]:
        """P(damaged) per crop, one batch."""
        if not crops:
            return np.zeros(0, np.float32)
        out = self._session.run([OUTPUT.name], {INPUT.name: to_batch(crops)})
        return np.asarray(out[0], np.float32).reshape(-1)

    def score_boxes(self, image: Image, boxes: Sequence[Box]) -> list[float]:
        """P(damaged) per box of one frame; boxes not wholly in view score 0 (the runner skips them)."""
        width = image.shape[1]
        inside = [i for i, b in enumerate(boxes) if in_view(b, width)]
        scores = self.scores([rectify(image, boxes[i]) for i in inside])
        result = [0.0] * len(boxes)
        for i, s in zip(inside, scores, strict=True):
            result[i] = float(s)
        return result
