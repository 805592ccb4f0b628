"""For capture tests: the cloud API on a real port, gateway tokens, orders recorded instead of
published, camera-like frames, and manifests of captures a gateway would register."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import uvicorn

from cloud.api import create_app
from cloud.auth.service import create_gateway_token
from cloud.config import CloudSettings
from cloud.datasets.orders import OrdersPublisher
from cloud.db import make_engine, make_sessionmaker, migrate
from edge_agent.frames import Frame
from protocol.captures import CaptureFile, CaptureManifest, CaptureOrder, CaptureOrders
from protocol.messages import utcnow
from protocol.topics import TopicSpace
from tests.support.plant import Plant, running_plant
from tests.support.releases import RecordingPublisher
from tests.support.waiting import wait_for

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class RecordingOrders(OrdersPublisher):
    """Capture orders recorded instead of published; ``down`` makes the broker refuse them."""

    def __init__(self) -> None:
        self.published: list[CaptureOrders] = []
        self.down = False

    def publish_orders(self, documents: Sequence[CaptureOrders]) -> None:
        if self.down:
            raise RuntimeError("broker unreachable (test)")
        self.published.extend(documents)

    def latest(self, gateway_id: str) -> CaptureOrders:
        """The newest document published for ``gateway_id``."""
        return [d for d in self.published if d.gateway_id == gateway_id][-1]


def mint_gateway_token(db_url: str, gateway_id: str) -> str:
    """A gateway token bound to ``gateway_id``, straight into the database."""
    migrate(db_url)
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            return create_gateway_token(session, gateway_id)[1]
    finally:
        engine.dispose()


@dataclass
class ApiServer:
    """The cloud API served by uvicorn on a real port, stoppable and restartable on that port
    (the cloud going away and coming back while gateways upload)."""

    settings: CloudSettings
    orders: RecordingOrders | None = None
    _server: uvicorn.Server | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    def start(self) -> None:
        app = create_app(self.settings, RecordingPublisher(), self.orders)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.settings.api_port, log_config=None)
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, name="api", daemon=True)
        self._thread.start()
        wait_for(lambda: server.started, 20, "the API to start")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._server = self._thread = None


@contextmanager
def serving(settings: CloudSettings, orders: RecordingOrders | None = None) -> Iterator[ApiServer]:
    """:class:`ApiServer` started, stopped on leaving."""
    server = ApiServer(settings, orders)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def camera_frame(seed: int, width: int = 96, height: int = 64) -> np.ndarray:
    """A BGR frame with noise (so its PNG does not shrink to nothing) that differs per seed."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    cv2.putText(image, str(seed), (4, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    return image


def frames(count: int, first: int = 0, source: str = "cam1") -> list[Frame]:
    """``count`` camera frames, a second apart from :data:`T0`."""
    return [
        Frame(source, f"frame-{i}", T0 + timedelta(seconds=i), camera_frame(i))
        for i in range(first, first + count)
    ]


def order(
    capture_id: str, slot: str = "defect", count: int = 5, max_bytes: int = 1 << 24, **extra: Any
) -> CaptureOrder:
    """One capture order as the cloud sends it."""
    return CaptureOrder(
        capture_id=capture_id,
        slot=slot,
        frames=count,
        max_bytes=max_bytes,
        requested_by="token:test-operator",
        requested_at=utcnow(),
        **extra,
    )


def png_files(count: int, first: int = 0) -> list[tuple[CaptureFile, bytes]]:
    """``count`` PNG frames and their manifest entries, named 000001.png on."""
    found = []
    for n in range(count):
        ok, encoded = cv2.imencode(".png", camera_frame(first + n))
        assert ok
        data = encoded.tobytes()
        file = CaptureFile(
            name=f"{n + 1:06d}.png",
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            captured_at=T0 + timedelta(seconds=n),
            source="cam1",
            frame=f"frame-{first + n}",
            model_label="good",
            score=0.9,
        )
        found.append((file, data))
    return found


def manifest(
    capture_id: str, gateway_id: str, files: Sequence[CaptureFile], requested: int | None = None, **extra: Any
) -> CaptureManifest:
    """A capture manifest of ``files`` (complete when they are all that was asked for)."""
    asked = requested or max(len(files), 1)
    fields: dict[str, Any] = {
        "capture_id": capture_id,
        "gateway_id": gateway_id,
        "line": "line-1",
        "station": "inspect-1",
        "slot": "main",
        "origin": "operator",
        "label": "good",
        "requested_by": "token:test-operator",
        "requested_frames": asked,
        "max_bytes": 1 << 24,
        "status": "complete" if len(files) == asked else "stopped",
        "reason": None if len(files) == asked else "the capture's byte cap is reached",
        "started_at": T0,
        "ended_at": T0 + timedelta(seconds=len(files)),
        "files": tuple(files),
    }
    return CaptureManifest.model_validate({**fields, **extra})


@dataclass
class CaptureCloud(Plant):
    """:class:`Plant` (the production-profile API over :func:`tests.support.database.seed`: gw-a on
    line-1 and gw-b on line-2, each with a defect model in slot ``main``) with a token per gateway
    as well (``gw-a``, ``gw-b``) and capture orders recorded."""

    orders: RecordingOrders = field(default_factory=RecordingOrders)

    def call(self, method: str, path: str, who: str, status: int, **kwargs: Any) -> Any:
        """``method`` ``/api/v1{path}`` as ``who``; assert the status, return the JSON body."""
        answer = self.client.request(method, f"/api/v1{path}", headers=self.headers(who), **kwargs)
        assert answer.status_code == status, answer.text
        return answer.json() if answer.content else None

    def start(self, who: str = "operator", status: int = 201, **body: Any) -> Any:
        """``POST /captures`` with ``body`` as ``who``; the answer."""
        return self.call("POST", "/captures", who, status, json=body)

    def upload(self, who: str, data: bytes) -> None:
        """Upload one file whole as ``who``."""
        sha = hashlib.sha256(data).hexdigest()
        self.call("PUT", f"/captures/files/{sha}", who, 200, params={"size": len(data)}, content=data)

    def register(self, who: str, found: CaptureManifest, status: int = 201) -> Any:
        body = found.model_dump(mode="json")
        return self.call("PUT", f"/captures/{found.capture_id}/manifest", who, status, json=body)

    def registered(self, capture_id: str, count: int, gateway: str = "gw-a") -> list[str]:
        """``gateway`` uploads ``count`` frames and registers them as ``capture_id``; their SHA-256."""
        files = png_files(count)
        for _f, data in files:
            self.upload(gateway, data)
        self.register(gateway, manifest(capture_id, gateway, [f for f, _ in files], requested=count))
        return [f.sha256 for f, _ in files]


@contextmanager
def capture_cloud(db_url: str, topics: TopicSpace, folder: Path) -> Iterator[CaptureCloud]:
    """:class:`CaptureCloud` on a freshly seeded ``db_url``."""
    orders = RecordingOrders()
    with running_plant(db_url, topics, folder, orders) as plant:
        plant.tokens.update({gw: mint_gateway_token(db_url, gw) for gw in ("gw-a", "gw-b")})
        yield CaptureCloud(plant.client, plant.tokens, plant.db_url, plant.topics, orders)
