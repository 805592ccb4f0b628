"""A camera line's frames as a sequence rendered on access: hundreds of 640x480 frames cost no memory
until read, so a drift check or a benchmark can walk a long stretch of a line, or several lines
one after the other (a look change), as one list of images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

from simulators.camera_line import CameraLine, CameraLineConfig

Image = npt.NDArray[np.uint8]


class LineFrames(Sequence[Image]):
    """Frames ``start`` .. ``start + count - 1`` of each ``(config, start, count)`` in turn, each
    passed through ``through`` when given (e.g. a JPEG round trip, as an MJPEG camera delivers it)."""

    def __init__(
        self, *parts: tuple[CameraLineConfig, int, int], through: Callable[[Image], Image] | None = None
    ) -> None:
        if any(start < 0 or count < 0 for _, start, count in parts):
            raise ValueError("LineFrames: start and count must be >= 0")
        self._parts = [(CameraLine(config), start, count) for config, start, count in parts]
        self._through = through
        self._length = sum(count for _, _, count in self._parts)

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Image: ...

    @overload
    def __getitem__(self, index: slice) -> list[Image]: ...

    def __getitem__(self, index: int | slice) -> Image | list[Image]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(f"frame {index} of {self._length}")
        for line, start, count in self._parts:
            if index < count:
                image = line.frame(start + index).image
                return image if self._through is None else self._through(image)
            index -= count
        raise IndexError(index)  # unreachable: the parts add up to the length
