"""A deterministic camera at an inspection station: one part per frame on a moving conveyor belt.

Frame ``i`` of a line depends only on ``(seed, i)`` and the appearance settings, never on which
frames were rendered before, so a test, a training run and a live stream agree on every pixel.
A configurable share of parts carries one defect (scratch, hole, stain, crack); the ground truth
names the label, the defect's bounding box and the part's bounding box in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from protocol.inference import DEFECT_TYPES, GOOD_LABEL
from simulators.defects import Box, draw_defect

__all__ = [
    "PART_SHAPES",
    "Box",
    "CameraLine",
    "CameraLineConfig",
    "FrameTruth",
    "SimFrame",
]

PART_SHAPES: tuple[str, ...] = ("washer", "plate", "bracket")

BeltStyle = Literal["ribbed", "mesh"]
Lighting = Literal["neutral", "warm", "dim"]

Image = npt.NDArray[np.uint8]
FloatImage = npt.NDArray[np.float32]

# Per-channel (B, G, R) gains: the unseen "warm" light shifts colours the model never trained on.
_LIGHT_TINT: dict[str, tuple[float, float, float]] = {
    "neutral": (1.0, 1.0, 1.0),
    "warm": (0.82, 0.97, 1.12),
    "dim": (0.72, 0.72, 0.75),
}
_BELT_PERIOD = 48  # pixels after which the belt texture repeats; the crop offset wraps at it
_BELT_SPEED = 7  # pixels the belt moves between frames
_NOISE_PAD = 64  # the sensor-noise bank is this much larger than a frame, for per-frame offsets


@dataclass(frozen=True)
class FrameTruth:
    """What is really in a frame: the part and where it lies, its label and, for a defect, where it is."""

    index: int
    label: str
    part: str
    box: Box | None
    part_box: Box | None = None  # the part's bounds (anti-aliased edge included)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict: ``{"index", "label", "part", "box": [x, y, w, h] | None, "part_box"}``."""
        return {
            "index": self.index,
            "label": self.label,
            "part": self.part,
            "box": None if self.box is None else self.box.as_list(),
            "part_box": None if self.part_box is None else self.part_box.as_list(),
        }


@dataclass(frozen=True)
class SimFrame:
    """One rendered frame (BGR uint8, as OpenCV reads a camera) with its ground truth."""

    index: int
    image: Image
    truth: FrameTruth


@dataclass(frozen=True)
class CameraLineConfig:
    """Everything that decides what the line renders; the same config always gives the same frames."""

    seed: int
    width: int = 640
    height: int = 480
    defect_rate: float = 0.2
    defect_types: tuple[str, ...] = DEFECT_TYPES
    belt: BeltStyle = "ribbed"
    lighting: Lighting = "neutral"
    noise_sigma: tuple[float, float] = field(default=(2.0, 5.0))

    def __post_init__(self) -> None:
        if not (160 <= self.width <= 4096 and 120 <= self.height <= 4096):
            raise ValueError(
                f"CameraLineConfig: frame size {self.width}x{self.height} is outside 160x120..4096"
            )
        if not 0.0 <= self.defect_rate <= 1.0:
            raise ValueError(f"CameraLineConfig.defect_rate must be in [0, 1], got {self.defect_rate}")
        unknown = [d for d in self.defect_types if d not in DEFECT_TYPES]
        if unknown or (self.defect_rate > 0 and not self.defect_types):
            raise ValueError(
                f"CameraLineConfig.defect_types {list(self.defect_types)} must be a non-empty subset "
                f"of {list(DEFECT_TYPES)}"
            )
        if self.belt not in ("ribbed", "mesh"):
            raise ValueError(f"CameraLineConfig.belt must be 'ribbed' or 'mesh', got {self.belt!r}")
        if self.lighting not in _LIGHT_TINT:
            raise ValueError(
                f"CameraLineConfig.lighting must be one of {list(_LIGHT_TINT)}, got {self.lighting!r}"
            )
        low, high = self.noise_sigma
        if not 0.0 <= low <= high:
            raise ValueError(
                f"CameraLineConfig.noise_sigma must be (low, high) with 0 <= low <= high, got {low, high}"
            )

    def unseen_appearance(self) -> CameraLineConfig:
        """The same line under a belt and light never used for training, for honest evaluation."""
        return replace(self, belt="mesh", lighting="warm", noise_sigma=(3.0, 7.0))


class CameraLine:
    """Renders frames of one configured line; thread-safe because rendering keeps no state."""

    def __init__(self, config: CameraLineConfig) -> None:
        self.config = config
        self._belt = _belt_texture(config)
        # Drawing fresh Gaussian noise per frame dominated render time; a fixed bank cropped at a
        # per-frame offset looks the same to a model and keeps frames a pure function of (seed, i).
        bank_rng = np.random.default_rng([config.seed, 0x5E45])
        self._noise = bank_rng.standard_normal(
            (config.height + _NOISE_PAD, config.width + _NOISE_PAD, 3), dtype=np.float32
        )

    def frame(self, index: int) -> SimFrame:
        """Render frame ``index`` (>= 0); the same index always gives the same pixels and truth."""
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, index])
        # Both draws happen whatever the outcome, and the defect has its own stream, so a frame
        # with a defect is the same frame as without it plus the defect pixels (tests rely on it).
        roll, kind = rng.random(), int(rng.integers(max(len(cfg.defect_types), 1)))
        label = cfg.defect_types[kind] if cfg.defect_types and roll < cfg.defect_rate else GOOD_LABEL
        part = PART_SHAPES[int(rng.integers(len(PART_SHAPES)))]

        offset = (index * _BELT_SPEED) % _BELT_PERIOD
        img = self._belt[:, offset : offset + cfg.width].copy()
        alpha = _part_mask(part, cfg.width, cfg.height, rng)
        tone = float(rng.uniform(105.0, 195.0))
        _composite_part(img, alpha, tone, rng)

        box: Box | None = None
        if label != GOOD_LABEL:
            box = draw_defect(img, alpha, label, tone, np.random.default_rng([cfg.seed, index, 1]))
        _apply_lighting(img, cfg, rng)
        ny, nx = (int(v) for v in rng.integers(0, _NOISE_PAD, 2))
        sigma = np.float32(rng.uniform(*cfg.noise_sigma))
        img += self._noise[ny : ny + cfg.height, nx : nx + cfg.width] * sigma
        out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        part_box = Box(*(int(v) for v in cv2.boundingRect((alpha > 0).astype(np.uint8))))
        truth = FrameTruth(index=index, label=label, part=part, box=box, part_box=part_box)
        return SimFrame(index=index, image=out, truth=truth)


def _belt_texture(cfg: CameraLineConfig) -> FloatImage:
    """A belt strip one period wider than the frame, cropped at a moving offset per frame."""
    h, w = cfg.height, cfg.width + _BELT_PERIOD
    # The belt is a fixed property of the line: seeded by the line's seed alone, not per frame.
    rng = np.random.default_rng([cfg.seed, 0xBE17])
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    grain = cv2.GaussianBlur(rng.normal(0, 6, (h, w)).astype(np.float32), (0, 0), 1.2)
    if cfg.belt == "ribbed":
        ribs = 10.0 * (np.cos(xs * (2 * np.pi / 12.0)) > 0.6)
        base = np.broadcast_to(50.0 + ribs, (h, w)) + grain
        colour = np.stack([base, base * 1.02, base * 1.0], axis=-1)
    else:
        weave = 12.0 * np.sin(xs * (2 * np.pi / 8.0)) * np.sin(ys * (2 * np.pi / 8.0))
        base = 82.0 + weave + grain
        colour = np.stack([base * 1.12, base * 1.0, base * 0.9], axis=-1)
    rail = int(h * 0.07)
    colour[:rail] = 150.0
    colour[h - rail :] = 150.0
    return colour.astype(np.float32)


def _part_mask(part: str, width: int, height: int, rng: np.random.Generator) -> FloatImage:
    """Anti-aliased coverage in [0, 1] of one part, placed near the centre with jitter."""
    mask = np.zeros((height, width), np.uint8)
    size = min(width, height) * float(rng.uniform(0.26, 0.32))  # half-extent of the part
    cx = width / 2 + float(rng.uniform(-0.06, 0.06)) * width
    cy = height / 2 + float(rng.uniform(-0.05, 0.05)) * height
    angle = float(rng.uniform(-np.pi, np.pi)) if part != "washer" else 0.0
    if part == "washer":
        centre = (round(cx * 16), round(cy * 16))
        cv2.circle(mask, centre, round(size * 16), 255, -1, cv2.LINE_AA, 4)
        cv2.circle(mask, centre, round(size * 0.34 * 16), 0, -1, cv2.LINE_AA, 4)
        return mask.astype(np.float32) / 255.0
    if part == "plate":
        pts = np.array([[-1.0, -0.7], [1.0, -0.7], [1.0, 0.7], [-1.0, 0.7]])
    else:  # an L-shaped bracket
        pts = np.array([[-1.0, -0.9], [-0.35, -0.9], [-0.35, 0.35], [1.0, 0.35], [1.0, 0.95], [-1.0, 0.95]])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    poly = (pts @ rot.T) * size + np.array([cx, cy])
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return mask.astype(np.float32) / 255.0


def _composite_part(img: FloatImage, alpha: FloatImage, tone: float, rng: np.random.Generator) -> None:
    """Cast a soft shadow, then lay brushed metal with a light gradient where the part is."""
    h, w = alpha.shape
    # Work only in the part's neighbourhood (shadow included): a third of the frame, 3x faster.
    bx, by, bw, bh = cv2.boundingRect((alpha > 0).astype(np.uint8))
    x0, y0 = max(bx - 24, 0), max(by - 24, 0)
    x1, y1 = min(bx + bw + 24, w), min(by + bh + 24, h)
    roi, a = img[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    rh, rw = a.shape
    shadow = cv2.GaussianBlur(np.roll(a, (7, 5), axis=(0, 1)), (0, 0), 5.0)
    roi *= (1.0 - 0.45 * shadow)[..., None]
    streaks = rng.standard_normal((rh, max(rw // 16, 2)), dtype=np.float32) * 7.0
    brushed = cv2.resize(streaks, (rw, rh), interpolation=cv2.INTER_LINEAR)
    gx, gy = (float(v) for v in rng.uniform(-0.25, 0.25, 2))
    ramp = 1.0 + (np.arange(x0, x1, dtype=np.float32)[None, :] / w - 0.5) * gx
    ramp = ramp + (np.arange(y0, y1, dtype=np.float32)[:, None] / h - 0.5) * gy
    metal = tone * ramp + brushed
    tint = rng.uniform(0.96, 1.04, 3).astype(np.float32)
    surface = metal[..., None] * tint[None, None, :]
    roi[:] = roi * (1.0 - a[..., None]) + surface * a[..., None]


def _apply_lighting(img: FloatImage, cfg: CameraLineConfig, rng: np.random.Generator) -> None:
    """Global gain, a lamp gradient and the light's tint, in place."""
    h, w = img.shape[:2]
    gain = float(rng.uniform(0.85, 1.15))
    lx, ly = (float(v) for v in rng.uniform(0, 1, 2))
    # The lamp's falloff is smooth, so a coarse grid scaled up is exact enough and 60x cheaper.
    gh, gw = max(h // 8, 2), max(w // 8, 2)
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    dist = np.hypot(xx / gw - lx, yy / gh - ly)
    falloff = cv2.resize(
        (gain * (1.0 - 0.18 * dist)).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR
    )
    tint = np.array(_LIGHT_TINT[cfg.lighting], np.float32)
    img *= falloff[..., None] * tint[None, None, :]
