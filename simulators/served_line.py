"""What the MJPEG server serves: any deterministic line simulator that renders frames with a truth,
and, optionally, a line whose look can be switched while it serves (``simulators.looks``)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


class Truth(Protocol):
    """A frame's ground truth, reported by ``/truth``."""

    def to_dict(self) -> dict[str, object]: ...


class RenderedFrame(Protocol):
    """What a line renders: any simulator (camera line, parcel line) that fits is served."""

    @property
    def index(self) -> int: ...

    @property
    def image(self) -> npt.NDArray[np.uint8]: ...

    @property
    def truth(self) -> Truth: ...


class LineConfig(Protocol):
    @property
    def seed(self) -> int: ...


class Line(Protocol):
    """A deterministic line: frame ``index`` is a pure function of the config."""

    @property
    def config(self) -> LineConfig: ...

    def frame(self, index: int) -> RenderedFrame: ...


@runtime_checkable
class LookSwitch(Protocol):
    """A line with named looks, one of them current; ``frame`` renders in the current look."""

    @property
    def look(self) -> str: ...

    @property
    def looks(self) -> tuple[str, ...]: ...

    def set_look(self, look: str) -> str:
        """Make ``look`` current and return the previous one; ValueError naming the known looks."""
        ...
