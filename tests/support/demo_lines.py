"""A demo's control endpoint over real simulated cameras, without the rest of the demo: what the
tests of ``factory-sim lines``, of the control itself and of the console's look switch run against.

Each camera is a small camera line (320x240) served by its own :class:`MjpegServer`, as the demo's
``factory-sim camera --serve`` processes serve theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from simulators.camera_line import CameraLineConfig
from simulators.demo_control import ControlServer, LineCamera, LineLooks
from simulators.looks import SwitchableLine
from simulators.mjpeg import MjpegConfig, MjpegServer


@dataclass(frozen=True)
class DemoLines:
    """The control endpoint (``url``; its state file in ``workdir``) and each gateway's camera."""

    url: str
    workdir: Path
    cameras: dict[str, MjpegServer]
    control: ControlServer

    def look_of(self, gateway: str) -> str:
        """What the gateway's camera renders in now, asked of the camera itself."""
        line = self.cameras[gateway].line
        assert isinstance(line, SwitchableLine)
        return line.look


def small_camera(seed: int) -> MjpegServer:
    """A served camera line with looks, small and slow enough for a busy machine."""
    line = SwitchableLine.camera(CameraLineConfig(seed=seed, width=320, height=240))
    return MjpegServer(line, MjpegConfig(fps=10.0))


@contextmanager
def running_demo_lines(workdir: Path, lines_of: dict[str, str]) -> Iterator[DemoLines]:
    """The control endpoint serving a camera per gateway of ``lines_of`` (gateway -> line)."""
    with ExitStack() as stack:
        cameras = {}
        for seed, gateway in enumerate(lines_of, start=1):
            cameras[gateway] = stack.enter_context(small_camera(seed))
        looks = LineLooks(
            [LineCamera(line, gw, "inspection", cameras[gw].url) for gw, line in lines_of.items()]
        )
        control = ControlServer(looks, workdir)
        control.start()
        stack.callback(control.stop)
        yield DemoLines(control.url, workdir, cameras, control)
