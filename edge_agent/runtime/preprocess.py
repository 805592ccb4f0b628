"""Frame -> input tensor, exactly as the manifest's preprocessing says.

The one implementation: the gateway's runners use it, and training and evaluation
(``domain_models``) use it too, so a model is measured on exactly the gateway's input.
BGR uint8 frame -> ``cv2.resize`` to (w, h) with INTER_AREA -> colour conversion -> float32
``* scale`` -> ``(x - mean) / std`` -> NCHW (or NHWC).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from edge_agent.frames import Image
from protocol.manifest import Preprocessing

Tensor = npt.NDArray[np.float32] | npt.NDArray[np.uint8]

_COLOR_CODES = {"rgb": cv2.COLOR_BGR2RGB, "gray": cv2.COLOR_BGR2GRAY}


def prepare_image(image: Image, spec: Preprocessing) -> Image:
    """Resize (INTER_AREA) and colour-convert one BGR uint8 image; returns HWC uint8."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}")
    width, height = spec.resize
    resized = np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    code = _COLOR_CODES.get(spec.color)
    if code is not None:
        resized = np.asarray(cv2.cvtColor(resized, code), dtype=np.uint8)
    if resized.ndim == 2:
        resized = resized[:, :, np.newaxis]
    return resized


def normalize(batch: npt.NDArray[np.uint8], spec: Preprocessing) -> npt.NDArray[np.float32]:
    """Prepared images (N, H, W, C) uint8 -> the float32 input tensor in the manifest's layout.

    ``x * scale``, then ``(x - mean) / std`` per channel. Training feeds its stored, already
    prepared frames through here too, so it computes exactly what the gateway does.
    """
    if batch.ndim != 4:
        raise ValueError(f"expected prepared images of shape (N, H, W, C), got {batch.shape}")
    x: npt.NDArray[np.float32] = batch.astype(np.float32) * np.float32(spec.scale)
    x = np.subtract(x, np.asarray(spec.mean, dtype=np.float32), dtype=np.float32)
    x = np.divide(x, np.asarray(spec.std, dtype=np.float32), dtype=np.float32)
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    out: npt.NDArray[np.float32] = np.ascontiguousarray(x, dtype=np.float32)
    return out


def to_tensor(images: Sequence[Image], spec: Preprocessing, dtype: str = "float32") -> Tensor:
    """Stack images into a batch tensor in the manifest's layout.

    A float32 input goes through :func:`normalize`; a uint8 input is fed raw (the model
    normalizes inside itself).
    """
    batch = np.stack([prepare_image(img, spec) for img in images])  # N, H, W, C
    if dtype == "uint8":
        out_u8: npt.NDArray[np.uint8] = batch
        return np.ascontiguousarray(out_u8.transpose(0, 3, 1, 2)) if spec.layout == "NCHW" else out_u8
    return normalize(batch, spec)
