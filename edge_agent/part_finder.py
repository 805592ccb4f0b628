"""Where the part lies in a frame, from the picture alone, so a defect's thumbnail can show all of it.

A model's defect box marks the flaw, not the part: a crop around it alone can show a part's corner
against the belt, which nobody on the line can place. Nothing at the gateway knows the part's
geometry, so it is read from the image: the belt runs across the frame (left to right, as parts
and parcels travel), so every row's left and right ends show that row's belt (or rail, or guide),
and a straight blend between them is the row's background, lamp gradient included. Pixels far
from it (Otsu's cut on the difference, never below :data:`MIN_CONTRAST`) are foreground; their
outer contours, holes filled, are the candidate parts. The part is the candidate that covers most
of the defect box (a part with a hole in it covers the hole too), one clear of the frame's edges
first; without a box, the largest one clear of the edges. It works on a copy at most
:data:`WORK_SIDE` pixels wide, well under a millisecond for a VGA frame.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt
from cv2.typing import MatLike

from edge_agent.frames import Image
from protocol.messages import Box

WORK_SIDE = 160  # longest side of the copy searched: a part is far larger than its pixels here
MIN_CONTRAST = 12.0  # grey levels from the belt; sensor noise, blurred, stays well below it
MIN_SHARE = 0.01  # a candidate smaller than this share of the frame is dirt or a reflection
_EDGE_SHARE = 1 / 40  # width of the strips at each row's ends read as that row's belt


def find_part(image: Image, box: Box | None = None) -> Box | None:
    """Bounds (frame pixels) of the part under ``box``, or the largest part; None if none stands out."""
    if image.ndim < 2 or image.size == 0:
        return None
    height, width = image.shape[:2]
    scale = min(1.0, WORK_SIDE / max(width, height))
    small_w, small_h = max(round(width * scale), 1), max(round(height * scale), 1)
    mask = _foreground(image, small_w, small_h)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    window = _scaled(box, scale, small_w, small_h)
    best: tuple[tuple[bool, bool, int, float], tuple[int, int, int, int]] | None = None
    for contour in contours:
        area = float(cv2.contourArea(contour))
        if area < MIN_SHARE * small_w * small_h:
            continue
        x, y, w, h = (int(v) for v in cv2.boundingRect(contour))
        clear = x > 0 and y > 0 and x + w < small_w and y + h < small_h
        covered = _covered(contour, window, small_w, small_h)
        rank = (covered > 0, clear, covered, area)
        if best is None or rank > best[0]:
            best = rank, (x, y, w, h)
    if best is None:
        return None
    x, y, w, h = best[1]
    x0, y0 = math.floor(x / scale), math.floor(y / scale)
    x1, y1 = min(math.ceil((x + w) / scale), width), min(math.ceil((y + h) / scale), height)
    return Box(x=x0, y=y0, w=max(x1 - x0, 1), h=max(y1 - y0, 1))


def _foreground(image: Image, small_w: int, small_h: int) -> npt.NDArray[np.uint8]:
    """0/1 mask of the pixels that differ from their row's belt, on the small copy."""
    small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0).astype(np.float32)
    if small.ndim == 2:
        small = small[..., None]
    strip = max(2, round(small_w * _EDGE_SHARE))
    left = np.median(small[:, :strip], axis=1)
    right = np.median(small[:, -strip:], axis=1)
    along = np.linspace(0.0, 1.0, small_w, dtype=np.float32)[None, :, None]
    belt = left[:, None, :] * (1.0 - along) + right[:, None, :] * along
    # The largest channel difference: a part the belt's grey but not its colour still stands out.
    difference = np.clip(np.abs(small - belt).max(axis=2), 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(difference, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (difference > max(otsu, MIN_CONTRAST)).astype(np.uint8)
    # Opening drops specks and the one-pixel seams a rib or a blurred rail edge leaves.
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return np.asarray(opened, dtype=np.uint8)


def _scaled(box: Box | None, scale: float, small_w: int, small_h: int) -> tuple[int, int, int, int] | None:
    """``box`` on the small copy as (x0, y0, x1, y1), at least one pixel; None without a box."""
    if box is None or box.w == 0 or box.h == 0:
        return None
    x0, y0 = min(math.floor(box.x * scale), small_w - 1), min(math.floor(box.y * scale), small_h - 1)
    x1 = min(max(math.ceil((box.x + box.w) * scale), x0 + 1), small_w)
    y1 = min(max(math.ceil((box.y + box.h) * scale), y0 + 1), small_h)
    return x0, y0, x1, y1


def _covered(contour: MatLike, window: tuple[int, int, int, int] | None, w: int, h: int) -> int:
    """Pixels of ``window`` inside the filled ``contour`` (0 without a window)."""
    if window is None:
        return 0
    filled = np.zeros((h, w), np.uint8)
    cv2.drawContours(filled, [contour], -1, 1, thickness=cv2.FILLED)
    x0, y0, x1, y1 = window
    return int(filled[y0:y1, x0:x1].sum())
