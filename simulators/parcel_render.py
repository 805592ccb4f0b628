"""Drawing helpers of the parcel line: real barcodes, shipping labels, box tops, damage, belts.

Barcodes are real symbols (Code 128 and EAN-13 module patterns from python-barcode's encoders,
QR matrices from segno) drawn on whole-pixel module grids, so a real decoder reads them back.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import segno
from barcode import EAN13, Code128  # type: ignore[import-untyped]

Image = npt.NDArray[np.uint8]
FloatImage = npt.NDArray[np.float32]

Symbology = Literal["code128", "ean13", "qr"]
SYMBOLOGIES: tuple[Symbology, ...] = ("code128", "ean13", "qr")
BeltStyle = Literal["rubber", "mesh", "green"]
Lighting = Literal["neutral", "warm", "dim", "flicker"]
Damage = Literal["none", "crushed_corner", "tear"]

# (B, G, R) gains per light; "flicker" adds a strong frame-to-frame gain swing on top.
LIGHT_TINT: dict[str, tuple[float, float, float]] = {
    "neutral": (1.0, 1.0, 1.0),
    "warm": (0.8, 0.96, 1.12),
    "dim": (0.62, 0.62, 0.66),
    "flicker": (1.05, 1.0, 0.95),
}
BELT_PERIOD = 64  # pixels after which any belt texture repeats
QUIET_MODULES = 10  # quiet zone each side of a linear symbol, in modules (the standards ask >= 10 / 9)


def barcode_modules(symbology: Symbology, data: str) -> tuple[npt.NDArray[np.uint8], str]:
    """The symbol as a module grid (1 = dark; one row for linear codes) and the text a reader returns."""
    if symbology == "code128":
        return np.array([[int(c) for c in Code128(data).build()[0]]], np.uint8), data
    if symbology == "ean13":
        code = EAN13(data)
        return np.array([[int(c) for c in code.build()[0]]], np.uint8), code.get_fullcode()
    qr = segno.make_qr(data, error="m")
    return np.array(qr.matrix, np.uint8), data


def render_symbol(symbology: Symbology, data: str, module_px: int, bar_height: int) -> tuple[FloatImage, str]:
    """A white-background greyscale image of the symbol with its quiet zone, and its decoded text."""
    modules, text = barcode_modules(symbology, data)
    if modules.shape[0] == 1:  # linear: stretch the row into bars
        quiet = np.zeros((1, QUIET_MODULES), np.uint8)
        row = np.concatenate([quiet, modules, quiet], axis=1)
        img = np.repeat(np.repeat(row, bar_height, axis=0), module_px, axis=1)
    else:
        padded = np.pad(modules, 4)  # QR's quiet zone is 4 modules
        img = np.repeat(np.repeat(padded, module_px, axis=0), module_px, axis=1)
    return (245.0 - 225.0 * img).astype(np.float32), text


def symbol_size(symbology: Symbology, data: str, module_px: int, bar_height: int) -> tuple[int, int]:
    """(width, height) in pixels of ``render_symbol``'s image, without rendering it."""
    modules, _ = barcode_modules(symbology, data)
    if modules.shape[0] == 1:
        return (modules.shape[1] + 2 * QUIET_MODULES) * module_px, bar_height
    side = (modules.shape[0] + 8) * module_px
    return side, side


def box_top(
    length_px: int,
    width_px: int,
    colour: tuple[float, float, float],
    symbol: FloatImage,
    damage: Damage,
    rng: np.random.Generator,
) -> tuple[FloatImage, FloatImage, FloatImage]:
    """The upright top face of a box: (BGR texture, coverage alpha, damage mask), length along x."""
    h, w = width_px, length_px
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    shade = 1.0 + 0.12 * (xs * rng.uniform(-1, 1) + ys * rng.uniform(-1, 1))
    grain = cv2.GaussianBlur(rng.normal(0, 4, (h, w)).astype(np.float32), (0, 0), 1.5)
    base = np.array(colour, np.float32)[None, None, :]
    tex = (base * shade[..., None] + grain[..., None]).astype(np.float32)
    # Packing tape along the length, slightly glossier than the board.
    tape = max(int(h * rng.uniform(0.12, 0.2)), 4)
    t0 = (h - tape) // 2
    tex[t0 : t0 + tape] = tex[t0 : t0 + tape] * 0.92 + 22.0
    # Edges of the flaps read as darker lines a few pixels in.
    cv2.rectangle(tex, (2, 2), (w - 3, h - 3), (base * 0.7).reshape(3).tolist(), 1)
    # Shipping label: white paper, two lines of "address" text, the symbol.
    sh, sw = symbol.shape
    pad = 6
    lw, lh = sw + 2 * pad, sh + 2 * pad + 18
    lx = int(rng.integers(4, max(w - lw - 4, 5)))
    ly = int(rng.integers(4, max(h - lh - 4, 5)))
    label = np.full((lh, lw), 245.0, np.float32)
    for k in range(2):
        tw = int(rng.integers(lw // 3, lw - 2 * pad))
        label[pad + 6 * k : pad + 6 * k + 3, pad : pad + tw] = 60.0
    label[18 + pad : 18 + pad + sh, pad : pad + sw] = symbol
    tex[ly : ly + lh, lx : lx + lw] = label[..., None]
    alpha = np.ones((h, w), np.float32)
    dmg = np.zeros((h, w), np.float32)
    if damage == "crushed_corner":
        _crush_corner(tex, alpha, dmg, rng)
    elif damage == "tear":
        _tear(tex, dmg, rng)
    return tex, alpha, dmg


def _crush_corner(tex: FloatImage, alpha: FloatImage, dmg: FloatImage, rng: np.random.Generator) -> None:
    """A dented corner: a creased triangle shaded darker towards its tip, the tip pushed in so the
    outline loses a notch. Severity varies: light dents barely darken the board."""
    h, w = alpha.shape
    a, b = int(min(h, w) * rng.uniform(0.22, 0.35)), int(min(h, w) * rng.uniform(0.22, 0.35))
    corner = int(rng.integers(4))
    pts = np.array([[0, 0], [a, 0], [0, b]], np.float32)
    push = rng.uniform(0.15, 0.35)  # how far the tip is pushed in
    notch = np.array([[0, 0], [a * push, 0], [0, b * push]], np.float32)
    flip = np.array([[1, 1], [-1, 1], [1, -1], [-1, -1]][corner], np.float32)
    origin = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]][corner], np.float32)
    tri = np.round(origin + pts * flip).astype(np.int32)
    cv2.fillPoly(dmg, [tri], 1.0)
    region = dmg > 0
    # Crushed board tilts away from the lamp: darkest at the tip, fading towards the fold line.
    ys, xs = np.nonzero(region)
    u = np.abs(xs - origin[0]) / max(a, 1) + np.abs(ys - origin[1]) / max(b, 1)  # 0 at tip, 1 at fold
    depth = rng.uniform(0.35, 0.6)
    tex[ys, xs] *= (1.0 - depth * (1.0 - 0.5 * np.clip(u, 0, 1)))[:, None].astype(np.float32)
    base = tex[ys, xs].mean(axis=0) if len(ys) else np.zeros(3, np.float32)
    for k in range(int(rng.integers(1, 4))):  # crease lines across the dent
        f = 0.3 + 0.25 * k
        p0 = np.round(origin + np.array([a * f, 0]) * flip).astype(int)
        p1 = np.round(origin + np.array([0, b * f]) * flip).astype(int)
        crease = (base * rng.uniform(0.35, 0.6)).tolist()
        cv2.line(tex, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), crease, int(rng.integers(1, 3)))
    cv2.fillPoly(alpha, [np.round(origin + notch * flip).astype(np.int32)], 0.0)


def _tear(tex: FloatImage, dmg: FloatImage, rng: np.random.Generator) -> None:
    """A ripped flap: a jagged gash with a pale torn-paper rim; inside either the dark gap into the
    box or the paler corrugated layer under the torn liner."""
    h, w = dmg.shape
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    length, angle = rng.uniform(0.25, 0.45) * min(h, w) * 1.6, rng.uniform(0, np.pi)
    n = 9
    t = np.linspace(-0.5, 0.5, n)
    along = np.stack([np.cos(angle), np.sin(angle)])
    across = np.stack([-np.sin(angle), np.cos(angle)])
    half = rng.uniform(3, 9, n) * np.sin(np.linspace(0.15, np.pi - 0.15, n))
    top = np.array([cx, cy]) + np.outer(t * length, along) + np.outer(half, across)
    bottom = np.array([cx, cy]) + np.outer(t * length, along) - np.outer(half, across)
    poly = np.round(np.concatenate([top, bottom[::-1]])).astype(np.int32)
    inside = np.zeros_like(dmg)
    cv2.fillPoly(inside, [poly], 1.0)
    board = tex[inside > 0].mean(axis=0) if (inside > 0).any() else np.full(3, 120.0, np.float32)
    # Half are a dark gap into the box, half the corrugated layer (the board's colour, paler, fluted).
    gap = rng.random() < 0.5
    fill = (30.0, 32.0, 40.0) if gap else tuple(float(v) for v in board * 0.75 + 35.0)
    cv2.polylines(tex, [poly], True, (215.0, 225.0, 230.0), int(rng.integers(2, 4)))
    cv2.fillPoly(tex, [poly], fill)
    if not gap:  # flutes across the tear, every 3 px
        ys, xs = np.nonzero(inside)
        stripe = ((xs * along[0] + ys * along[1]).astype(int) // 3) % 2 == 0
        tex[ys[stripe], xs[stripe]] *= 0.85
    cv2.fillPoly(dmg, [poly], 1.0)
    cv2.polylines(dmg, [poly], True, 1.0, 3)


def belt_texture(style: BeltStyle, height: int, width: int, seed: int) -> FloatImage:
    """A belt strip ``BELT_PERIOD`` wider than the frame, cropped at the belt's offset per frame."""
    h, w = height, width + BELT_PERIOD
    rng = np.random.default_rng([seed, 0xBE17])
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    grain = cv2.GaussianBlur(rng.normal(0, 5, (h, w)).astype(np.float32), (0, 0), 1.2)
    if style == "rubber":  # dark grey with transverse ribs
        base = np.broadcast_to(48.0 + 9.0 * (np.cos(xs * (2 * np.pi / 16.0)) > 0.5), (h, w)) + grain
        colour = np.stack([base, base * 1.02, base], axis=-1)
    elif style == "mesh":  # lighter woven steel
        base = 92.0 + 14.0 * np.sin(xs * (2 * np.pi / 8.0)) * np.sin(ys * (2 * np.pi / 8.0)) + grain
        colour = np.stack([base * 1.1, base, base * 0.92], axis=-1)
    else:  # green PVC with a faint diamond pattern
        base = 70.0 + 6.0 * np.sin((xs + ys) * (2 * np.pi / 32.0)) + grain
        colour = np.stack([base * 0.8, base * 1.45, base * 0.75], axis=-1)
    rail = int(h * 0.05)
    colour[:rail] = 150.0
    colour[h - rail :] = 150.0
    return colour.astype(np.float32)


def apply_lighting(img: FloatImage, lighting: Lighting, index: int, rng: np.random.Generator) -> None:
    """Per-frame gain (mains flicker for "flicker"), a lamp gradient and the light's tint, in place."""
    h, w = img.shape[:2]
    swing = 0.3 if lighting == "flicker" else 0.08
    gain = 1.0 + swing * float(np.sin(index * 0.9)) + float(rng.uniform(-0.05, 0.05))
    lx, ly = (float(v) for v in rng.uniform(0, 1, 2))
    gh, gw = max(h // 8, 2), max(w // 8, 2)
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    falloff = gain * (1.0 - 0.2 * np.hypot(xx / gw - lx, yy / gh - ly))
    full = cv2.resize(falloff.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    img *= full[..., None] * np.array(LIGHT_TINT[lighting], np.float32)[None, None, :]
