"""Frame -> input tensor, exactly as the manifest's ``preprocessing`` block describes it.

numpy + OpenCV only (no torch): training uses this module, and it is the reference an edge
runtime must reproduce from the manifest alone:
BGR uint8 frame -> cv2.resize to (w, h) with INTER_AREA -> colour conversion -> float32 * scale
-> (x - mean) / std -> NCHW (or NHWC).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from protocol.manifest import Preprocessing

_COLOR_CODES = {"rgb": cv2.COLOR_BGR2RGB, "gray": cv2.COLOR_BGR2GRAY}


def resize_and_convert(frame: npt.NDArray[np.uint8], spec: Preprocessing) -> npt.NDArray[np.uint8]:
    """Resize a BGR uint8 frame (H, W, 3) and convert its colour; returns uint8 (h, w, C)."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            f"preprocess: expected a BGR uint8 frame of shape (H, W, 3), got {frame.dtype} {frame.shape}"
        )
    width, height = spec.resize
    small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    code = _COLOR_CODES.get(spec.color)
    if code is not None:
        small = cv2.cvtColor(small, code)
    if small.ndim == 2:
        small = small[:, :, None]
    return np.ascontiguousarray(small, dtype=np.uint8)


def normalize(pixels: npt.NDArray[np.uint8], spec: Preprocessing) -> npt.NDArray[np.float32]:
    """Scale, standardise and lay out uint8 pixels (N, h, w, C) as float32 (N, C, h, w) or (N, h, w, C)."""
    if pixels.ndim != 4:
        raise ValueError(f"normalize: expected pixels of shape (N, h, w, C), got {pixels.shape}")
    x = pixels.astype(np.float32) * np.float32(spec.scale)
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    x = (x - mean) / std
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def preprocess(frame: npt.NDArray[np.uint8], spec: Preprocessing) -> npt.NDArray[np.float32]:
    """One BGR uint8 frame -> a batch of one input tensor, shape (1, C, h, w) for NCHW."""
    return normalize(resize_and_convert(frame, spec)[None], spec)


def preprocess_batch(frames: Sequence[npt.NDArray[np.uint8]], spec: Preprocessing) -> npt.NDArray[np.float32]:
    """Several BGR uint8 frames (any sizes) -> one input batch (N, C, h, w) for NCHW."""
    if not frames:
        raise ValueError("preprocess_batch: no frames given")
    return normalize(np.stack([resize_and_convert(f, spec) for f in frames]), spec)
