"""The four defect types, drawn onto a rendered part with the box of the pixels they change."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from protocol.inference import DEFECT_TYPES

FloatImage = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left corner, width and height."""

    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        """``[x, y, w, h]``, the form written to JSON."""
        return [self.x, self.y, self.w, self.h]


def draw_defect(img: FloatImage, alpha: FloatImage, label: str, tone: float, rng: np.random.Generator) -> Box:
    """Draw one defect on the part; returns the box of the pixels it really changed."""
    h, w = alpha.shape
    # Defects start well inside the part so most of each one lands on metal, not belt. A small
    # part (small frames) may not survive the full margin: then the largest margin that leaves
    # some of it, so every frame size the config accepts can carry a defect.
    solid = (alpha > 0.99).astype(np.uint8)
    candidates = np.argwhere(solid > 0)
    for margin in (25, 13, 7, 3):
        inner = np.argwhere(cv2.erode(solid, np.ones((margin, margin), np.uint8)) > 0)
        if len(inner):
            candidates = inner
            break
    if len(candidates) == 0:
        raise RuntimeError("no part in the frame to place a defect on")
    for _ in range(8):
        cy, cx = (float(v) for v in candidates[int(rng.integers(len(candidates)))])
        layer = np.zeros((h, w), np.uint8)
        colour: tuple[float, float, float]
        strength = 1.0
        if label == "scratch":
            length, angle = rng.uniform(40, 90), rng.uniform(0, np.pi)
            dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
            p1 = (round((cx - dx) * 16), round((cy - dy) * 16))
            p2 = (round((cx + dx) * 16), round((cy + dy) * 16))
            cv2.line(layer, p1, p2, 255, int(rng.integers(2, 4)), cv2.LINE_AA, 4)
            bright = min(tone + rng.uniform(55, 85), 255.0)
            colour = (bright, bright, bright)
        elif label == "hole":
            radius = rng.uniform(6, 12)
            cv2.circle(layer, (round(cx * 16), round(cy * 16)), round(radius * 16), 255, -1, cv2.LINE_AA, 4)
            dark = rng.uniform(12, 35)
            colour = (dark, dark, dark)
        elif label == "stain":
            for _blob in range(int(rng.integers(2, 5))):
                ox, oy = rng.normal(0, 7, 2)
                axes = (int(rng.uniform(8, 20)), int(rng.uniform(6, 15)))
                cv2.ellipse(layer, (int(cx + ox), int(cy + oy)), axes, rng.uniform(0, 180), 0, 360, 255, -1)
            layer = np.asarray(cv2.GaussianBlur(layer, (0, 0), 3.0), np.uint8)
            base = float(rng.uniform(20, 45))
            colour = (base * 0.6, base * 1.1, base * 1.6)  # brownish (B, G, R): oil or rust
            strength = float(rng.uniform(0.45, 0.7))
        elif label == "crack":
            angle, pts = rng.uniform(0, 2 * np.pi), [(cx, cy)]
            for _seg in range(int(rng.integers(5, 9))):
                angle += rng.uniform(-0.9, 0.9)
                step = rng.uniform(7, 13)
                pts.append((pts[-1][0] + np.cos(angle) * step, pts[-1][1] + np.sin(angle) * step))
            poly = np.round(np.array(pts) * 16).astype(np.int32)
            cv2.polylines(layer, [poly], False, 255, 2, cv2.LINE_AA, 4)
            dark = max(tone - rng.uniform(85, 115), 5.0)
            colour = (dark, dark, dark)
        else:
            raise ValueError(f"unknown defect type {label!r}; expected one of {list(DEFECT_TYPES)}")
        rx, ry, rw, rh = cv2.boundingRect(layer)
        a = (layer[ry : ry + rh, rx : rx + rw].astype(np.float32) / 255.0) * alpha[ry : ry + rh, rx : rx + rw]
        a *= strength
        ys, xs = np.nonzero(a > 0.15)
        if len(xs) < 12:  # the defect fell off the part: try another spot
            continue
        roi = img[ry : ry + rh, rx : rx + rw]
        roi[:] = roi * (1.0 - a[..., None]) + np.array(colour, np.float32)[None, None, :] * a[..., None]
        x0, y0 = rx + int(xs.min()), ry + int(ys.min())
        return Box(x=x0, y=y0, w=rx + int(xs.max()) - x0 + 1, h=ry + int(ys.max()) - y0 + 1)
    raise RuntimeError(f"could not place a {label} defect on the part after 8 tries")
