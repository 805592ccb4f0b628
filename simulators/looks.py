"""Named looks of a line: the same parts (or parcels) on the line, seen on another belt, under
another light or through a noisier sensor, switchable while the line serves.

A look changes appearance only, never what flows down the line (which part, which defect, which
parcel, where): frames before and after a switch differ in nothing but their look, which is what
a drift test needs, and frame ``i`` in look ``L`` is a pure function of ``(config, i, L)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.parcel_line import ParcelLine, ParcelLineConfig
from simulators.served_line import Line, LineConfig, Truth

NORMAL = "normal"
# Each look and what it shows; the camera and the parcel line both offer every one of them.
LOOKS: dict[str, str] = {
    NORMAL: "the line as configured: what its models were trained on",
    "unseen": "belt and light never used for training (camera: mesh belt, warm light; parcels: "
    "green belt, flickering light) and a noisier sensor",
    "dim": "the lamp at about 70 %",
    "warm": "a warm lamp: reds up, blues down",
    "mesh": "a mesh belt under the parts",
}


# The looks both lines render by changing one field of their config (both configs have it).
_ONE_FIELD: dict[str, dict[str, Any]] = {
    "dim": {"lighting": "dim"},
    "warm": {"lighting": "warm"},
    "mesh": {"belt": "mesh"},
}


class LookError(ValueError):
    """A look that does not exist; the message lists those that do."""


def check_look(look: str) -> str:
    """``look`` if it is a known look; else :class:`LookError` naming the known ones."""
    if look not in LOOKS:
        raise LookError(f"unknown look {look!r}; looks: {', '.join(LOOKS)}")
    return look


def camera_look(config: CameraLineConfig, look: str) -> CameraLineConfig:
    """The camera line's config in ``look``."""
    if check_look(look) == "unseen":
        return config.unseen_appearance()
    return replace(config, **_ONE_FIELD.get(look, {}))


def parcel_look(config: ParcelLineConfig, look: str) -> ParcelLineConfig:
    """The parcel line's config in ``look``; parcel sizes stay those of ``config``."""
    if check_look(look) == "unseen":
        # ParcelLineConfig.unseen() also changes the parcels' sizes: a look keeps the parcels.
        return replace(config.unseen(), length_mm=config.length_mm, width_mm=config.width_mm)
    return replace(config, **_ONE_FIELD.get(look, {}))


@dataclass(frozen=True)
class LookedTruth:
    """A frame's truth plus the look it was rendered in (``/truth`` reports both)."""

    inner: Truth
    look: str

    def to_dict(self) -> dict[str, object]:
        return {**self.inner.to_dict(), "look": self.look}


@dataclass(frozen=True)
class LookedFrame:
    """One frame rendered in one look."""

    index: int
    image: npt.NDArray[np.uint8]
    truth: LookedTruth


class SwitchableLine:
    """A line whose look can change while it serves; thread-safe.

    One line per look is built on first use and kept (building one renders its belt and noise
    bank, too slow to repeat at every switch).
    """

    def __init__(self, build: Callable[[str], Line], look: str = NORMAL) -> None:
        self._build = build
        self._lines: dict[str, Line] = {}
        self._lock = threading.Lock()
        self._look = check_look(look)

    @classmethod
    def camera(cls, config: CameraLineConfig, look: str = NORMAL) -> SwitchableLine:
        """A camera line of ``config`` whose looks are :func:`camera_look`'s."""
        return cls(lambda name: CameraLine(camera_look(config, name)), look)

    @classmethod
    def parcels(cls, config: ParcelLineConfig, look: str = NORMAL) -> SwitchableLine:
        """A parcel line of ``config`` whose looks are :func:`parcel_look`'s."""
        return cls(lambda name: ParcelLine(parcel_look(config, name)), look)

    @property
    def config(self) -> LineConfig:
        """The config of the line in its normal look."""
        return self._line(NORMAL).config

    @property
    def look(self) -> str:
        return self._look

    @property
    def looks(self) -> tuple[str, ...]:
        return tuple(LOOKS)

    def set_look(self, look: str) -> str:
        """Render in ``look`` from the next frame on; return the previous look."""
        self._line(check_look(look))  # built here, so the next frame is not late for it
        with self._lock:
            previous, self._look = self._look, look
        return previous

    def frame(self, index: int) -> LookedFrame:
        """Frame ``index`` in the current look."""
        return self.frame_in(index, self._look)

    def frame_in(self, index: int, look: str) -> LookedFrame:
        """Frame ``index`` in ``look``: the same arguments always give the same pixels and truth."""
        rendered = self._line(check_look(look)).frame(index)
        return LookedFrame(rendered.index, rendered.image, LookedTruth(rendered.truth, look))

    def _line(self, look: str) -> Line:
        with self._lock:
            line = self._lines.get(look)
            if line is None:
                line = self._lines[look] = self._build(look)
            return line
