"""A deterministic top camera over a parcel conveyor: boxes ride the belt left to right.

Each parcel has a fixed place on the belt (its ``belt_pos``, pixels behind the belt's origin), a
size in mm, a colour, a rotation, a shipping label with a real barcode (Code 128, EAN-13 or QR)
and sometimes damage. Frame ``i`` shows the belt advanced by ``i * speed_px`` pixels, so the same
parcel appears in several consecutive frames (counting needs tracking) and frame ``i`` depends
only on ``(config, i)``. Ground truth per frame lists every visible parcel with its oriented box,
barcode, damage and true footprint in mm (``mm_per_px`` is the camera calibration).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import numpy.typing as npt

from simulators.parcel_render import (
    BELT_PERIOD,
    SYMBOLOGIES,
    BeltStyle,
    Damage,
    Lighting,
    Symbology,
    apply_lighting,
    belt_texture,
    box_top,
    render_symbol,
    symbol_size,
)

Image = npt.NDArray[np.uint8]

# Box colours (B, G, R): kraft board shades, white board, grey and a blue plastic tote.
_COLOURS: tuple[tuple[float, float, float], ...] = (
    (95.0, 140.0, 180.0),
    (80.0, 125.0, 165.0),
    (110.0, 155.0, 195.0),
    (215.0, 215.0, 210.0),
    (150.0, 150.0, 155.0),
    (170.0, 110.0, 60.0),
)
_NOISE_PAD = 64
_MODULE_PX = 2  # narrowest bar in pixels: what a 1.25 mm/px camera resolves from a 2.5 mm module


@dataclass(frozen=True)
class ParcelLineConfig:
    """What the line renders; the same config always gives the same frames."""

    seed: int
    width: int = 960
    height: int = 540
    mm_per_px: float = 1.25
    speed_px: int = 32
    length_mm: tuple[float, float] = (300.0, 500.0)
    width_mm: tuple[float, float] = (230.0, 340.0)
    max_angle_deg: float = 35.0
    gap_px: tuple[int, int] = (40, 160)
    damage_rate: float = 0.15
    belt: BeltStyle = "rubber"
    lighting: Lighting = "neutral"
    noise_sigma: tuple[float, float] = field(default=(1.5, 3.5))

    def __post_init__(self) -> None:
        if not (320 <= self.width <= 4096 and 240 <= self.height <= 4096):
            raise ValueError(f"ParcelLineConfig: frame {self.width}x{self.height} is outside 320x240..4096")
        if not 0.1 <= self.mm_per_px <= 10.0:
            raise ValueError(f"ParcelLineConfig.mm_per_px must be in [0.1, 10], got {self.mm_per_px}")
        for name in ("length_mm", "width_mm"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"ParcelLineConfig.{name} must be (low, high) with 0 < low <= high")
        rad = np.deg2rad(np.linspace(0.0, self.max_angle_deg, 16))
        across = np.max(self.length_mm[1] * np.sin(rad) + self.width_mm[1] * np.cos(rad)) / self.mm_per_px
        if across > 0.9 * self.height:
            raise ValueError(
                f"ParcelLineConfig: a {self.length_mm[1]}x{self.width_mm[1]} mm parcel does not fit a "
                f"{self.height}-px-high belt at {self.mm_per_px} mm/px"
            )
        if not 0.0 <= self.damage_rate <= 1.0:
            raise ValueError(f"ParcelLineConfig.damage_rate must be in [0, 1], got {self.damage_rate}")
        if not 1 <= self.speed_px <= self.width // 4:
            raise ValueError(f"ParcelLineConfig.speed_px must be in [1, width/4], got {self.speed_px}")
        if self.gap_px[0] < 20 or self.gap_px[1] < self.gap_px[0]:
            raise ValueError(
                f"ParcelLineConfig.gap_px must be (low, high) with 20 <= low <= high, got {self.gap_px}"
            )

    def unseen(self) -> ParcelLineConfig:
        """Belt, light and sizes never used for training: for honest evaluation only."""
        return replace(
            self, belt="green", lighting="flicker", length_mm=(260.0, 520.0), width_mm=(200.0, 350.0),
            noise_sigma=(2.5, 5.0),
        )  # fmt: skip


@dataclass(frozen=True)
class ParcelTruth:
    """One parcel as the camera sees it in one frame."""

    parcel_id: int
    center: tuple[float, float]  # pixels
    size_px: tuple[float, float]  # (length, width) in pixels, length >= width
    angle_deg: float  # rotation of the length axis from the belt's direction
    length_mm: float
    width_mm: float
    barcode: str
    symbology: Symbology
    damage: Damage

    def corners(self) -> npt.NDArray[np.float32]:
        """The four corners of the oriented box, pixels, as cv2.boxPoints orders them."""
        rect = (self.center, self.size_px, self.angle_deg)
        return cv2.boxPoints(rect).astype(np.float32)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict of every field plus ``corners``."""
        return {
            "parcel_id": self.parcel_id,
            "center": [round(v, 2) for v in self.center],
            "size_px": [round(v, 2) for v in self.size_px],
            "angle_deg": round(self.angle_deg, 2),
            "length_mm": round(self.length_mm, 1),
            "width_mm": round(self.width_mm, 1),
            "barcode": self.barcode,
            "symbology": self.symbology,
            "damage": self.damage,
            "corners": np.round(self.corners(), 1).tolist(),
        }


@dataclass(frozen=True)
class FrameTruth:
    """Every parcel visible in a frame, and the calibration that turns pixels into mm."""

    index: int
    mm_per_px: float
    parcels: tuple[ParcelTruth, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (what the MJPEG server's ``/truth`` reports)."""
        return {
            "index": self.index,
            "mm_per_px": self.mm_per_px,
            "parcels": [p.to_dict() for p in self.parcels],
        }


@dataclass(frozen=True)
class SimFrame:
    """One rendered frame (BGR uint8) with its truth and per-pixel masks for training."""

    index: int
    image: Image
    truth: FrameTruth
    parcel_mask: npt.NDArray[np.float32]  # coverage of any parcel in [0, 1]
    damage_mask: npt.NDArray[np.float32]  # damaged pixels in [0, 1]


@dataclass(frozen=True)
class _Plan:
    parcel_id: int
    belt_pos: float  # centre's distance behind the belt origin, pixels
    half_extent_x: float
    center_y: float
    length_px: int
    width_px: int
    angle_deg: float
    colour: tuple[float, float, float]
    symbology: Symbology
    data: str
    barcode: str
    damage: Damage


class ParcelLine:
    """Renders frames of one configured parcel line; thread-safe (plans are built under a lock)."""

    def __init__(self, config: ParcelLineConfig) -> None:
        self.config = config
        self._belt = belt_texture(config.belt, config.height, config.width, config.seed)
        # Fresh Gaussian noise per frame dominated render time; a fixed bank cropped at a per-frame
        # offset looks the same to a model and keeps frames a pure function of (config, index).
        bank = np.random.default_rng([config.seed, 0x5E45])
        self._noise = bank.standard_normal(
            (config.height + _NOISE_PAD, config.width + _NOISE_PAD, 3), np.float32
        )
        self._plans: list[_Plan] = []
        self._tops: dict[int, tuple[npt.NDArray[np.float32], ...]] = {}
        self._lock = threading.Lock()

    def _plan(self, k: int) -> _Plan:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 0xB0C5, k])
        length_mm = float(rng.uniform(*cfg.length_mm))
        width_mm = float(rng.uniform(*cfg.width_mm))
        length_mm, width_mm = max(length_mm, width_mm), min(length_mm, width_mm)
        lp, wp = round(length_mm / cfg.mm_per_px), round(width_mm / cfg.mm_per_px)
        angle = float(rng.uniform(-cfg.max_angle_deg, cfg.max_angle_deg))
        rad = np.deg2rad(angle)
        hx = (abs(lp * np.cos(rad)) + abs(wp * np.sin(rad))) / 2
        hy = (abs(lp * np.sin(rad)) + abs(wp * np.cos(rad))) / 2
        margin = cfg.height * 0.05 + 2
        cy = float(rng.uniform(margin + hy, max(cfg.height - margin - hy, margin + hy)))
        lane = int(rng.integers(1, 4))
        symbology = SYMBOLOGIES[int(rng.integers(len(SYMBOLOGIES)))]
        digits = "".join(str(int(d)) for d in rng.integers(0, 10, 11))
        data = {
            "code128": f"{lane}{digits[:7]}",
            "ean13": f"{lane}0{digits[:10]}",
            "qr": f"PX{lane}-{digits[:6]}",
        }[symbology]
        sw, sh = symbol_size(symbology, data, _MODULE_PX, 44)
        if sw + 16 > lp - 8 or sh + 34 > wp - 8:  # the label would not fit this box: use a QR
            symbology, data = "qr", f"PX{lane}-{digits[:6]}"
        _, text = render_symbol(symbology, data, _MODULE_PX if symbology != "qr" else 3, 44)
        damage: Damage = "none"
        if rng.random() < cfg.damage_rate:
            damage = "crushed_corner" if rng.random() < 0.5 else "tear"
        gap = float(rng.integers(cfg.gap_px[0], cfg.gap_px[1] + 1))
        prev = self._plans[k - 1] if k else None
        pos = (prev.belt_pos + prev.half_extent_x + gap + hx) if prev else hx + gap
        colour = _COLOURS[int(rng.integers(len(_COLOURS)))]
        return _Plan(k, pos, hx, cy, lp, wp, angle, colour, symbology, data, text, damage)

    def _plans_until(self, belt_px: float) -> list[_Plan]:
        """All parcels whose leading edge has entered by belt offset ``belt_px``."""
        with self._lock:
            while not self._plans or self._plans[-1].belt_pos - self._plans[-1].half_extent_x < belt_px:
                self._plans.append(self._plan(len(self._plans)))
            return list(self._plans)

    def center_x(self, parcel_id: int, index: int) -> float:
        """Where parcel ``parcel_id``'s centre is (pixels, may be off-frame) in frame ``index``."""
        plans = self._plans_until(float(index * self.config.speed_px))
        while parcel_id >= len(plans):
            plans = self._plans_until(plans[-1].belt_pos + 1)
        return index * self.config.speed_px - plans[parcel_id].belt_pos

    def entered(self, index: int) -> list[int]:
        """Ids of every parcel whose leading edge has entered the frame by frame ``index``."""
        offset = float(index * self.config.speed_px)
        return [p.parcel_id for p in self._plans_until(offset) if p.belt_pos - p.half_extent_x < offset]

    def crossings(self, line_x: float, start: int, stop: int) -> list[int]:
        """Ids of parcels whose centre crosses ``x = line_x`` between frames ``start`` and ``stop - 1``."""
        v = self.config.speed_px
        plans = self._plans_until(float(stop * v))
        return [p.parcel_id for p in plans if start * v - p.belt_pos < line_x <= (stop - 1) * v - p.belt_pos]

    def frame(self, index: int) -> SimFrame:
        """Render frame ``index`` (>= 0); the same index always gives the same pixels and truth."""
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        cfg = self.config
        offset = index * cfg.speed_px
        plans = self._plans_until(float(offset))
        img = self._belt[:, BELT_PERIOD - offset % BELT_PERIOD :][:, : cfg.width].copy()
        cover = np.zeros((cfg.height, cfg.width), np.float32)
        damage = np.zeros_like(cover)
        truths: list[ParcelTruth] = []
        for p in plans:
            cx = offset - p.belt_pos
            if cx + p.half_extent_x < 0 or cx - p.half_extent_x > cfg.width:
                continue
            self._draw(img, cover, damage, p, cx)
            truths.append(
                ParcelTruth(
                    parcel_id=p.parcel_id, center=(cx, p.center_y), size_px=(p.length_px, p.width_px),
                    angle_deg=p.angle_deg, length_mm=p.length_px * cfg.mm_per_px,
                    width_mm=p.width_px * cfg.mm_per_px, barcode=p.barcode, symbology=p.symbology,
                    damage=p.damage,
                )
            )  # fmt: skip
        rng = np.random.default_rng([cfg.seed, 0x1167, index])
        apply_lighting(img, cfg.lighting, index, rng)
        ny, nx = (int(v) for v in rng.integers(0, _NOISE_PAD, 2))
        sigma = np.float32(rng.uniform(*cfg.noise_sigma))
        img += self._noise[ny : ny + cfg.height, nx : nx + cfg.width] * sigma
        out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        truth = FrameTruth(index=index, mm_per_px=cfg.mm_per_px, parcels=tuple(truths))
        return SimFrame(index, out, truth, cover, damage)

    def _top(self, p: _Plan) -> tuple[npt.NDArray[np.float32], ...]:
        """The parcel's top face; it depends on the parcel alone, so it is cached for its frames."""
        with self._lock:
            cached = self._tops.get(p.parcel_id)
        if cached is not None:
            return cached
        rng = np.random.default_rng([self.config.seed, 0x7E57, p.parcel_id])
        symbol, _ = render_symbol(p.symbology, p.data, _MODULE_PX if p.symbology != "qr" else 3, 44)
        top = box_top(p.length_px, p.width_px, p.colour, symbol, p.damage, rng)
        with self._lock:
            self._tops[p.parcel_id] = top
            while len(self._tops) > 16:  # a handful of boxes are ever in view at once
                self._tops.pop(next(iter(self._tops)))
        return top

    def _draw(self, img: npt.NDArray[np.float32], cover: npt.NDArray[np.float32],
              damage: npt.NDArray[np.float32], p: _Plan, cx: float) -> None:  # fmt: skip
        """Composite one box (with a soft shadow) into the frame at centre ``(cx, p.center_y)``."""
        cfg = self.config
        tex, alpha, dmg = self._top(p)
        # Texture (x right, y down, length along x) -> frame: rotate by angle about its centre.
        m = cv2.getRotationMatrix2D((p.length_px / 2, p.width_px / 2), -p.angle_deg, 1.0)
        m[0, 2] += cx - p.length_px / 2
        m[1, 2] += p.center_y - p.width_px / 2
        # Work in the box's neighbourhood only (shadow included): warping whole frames was 5x slower.
        rad = np.deg2rad(p.angle_deg)
        hy = (abs(p.length_px * np.sin(rad)) + abs(p.width_px * np.cos(rad))) / 2
        x0, y0 = max(int(cx - p.half_extent_x) - 16, 0), max(int(p.center_y - hy) - 16, 0)
        x1, y1 = min(int(cx + p.half_extent_x) + 17, cfg.width), min(int(p.center_y + hy) + 17, cfg.height)
        if x1 <= x0 or y1 <= y0:
            return
        m[0, 2] -= x0
        m[1, 2] -= y0
        size = (x1 - x0, y1 - y0)
        a = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR)
        t = cv2.warpAffine(tex, m, size, flags=cv2.INTER_LINEAR)
        d = cv2.warpAffine(dmg, m, size, flags=cv2.INTER_LINEAR)
        roi = img[y0:y1, x0:x1]
        shadow = cv2.GaussianBlur(np.roll(a, (6, 4), axis=(0, 1)), (0, 0), 4.0)
        roi *= (1.0 - 0.4 * shadow)[..., None]
        roi[:] = roi * (1.0 - a[..., None]) + t * a[..., None]
        np.maximum(cover[y0:y1, x0:x1], a, out=cover[y0:y1, x0:x1])
        np.maximum(damage[y0:y1, x0:x1], d * a, out=damage[y0:y1, x0:x1])
