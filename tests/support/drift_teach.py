"""For the drift-to-teach scenario: the line's looks as phases of a replayed folder, the cloud with a
real Celery worker carrying out training runs and alert evaluations, and a release run on held-out
frames for its AUROC and false rejects.

The agent replays its folder in a loop, re-listing it at each pass; a phase's files carry the
phase's number as a prefix, so frames sort in the line's order and a result's frame name says
which look it was in.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import uvicorn
from celery.contrib.testing.worker import start_worker

from cloud.api import create_app
from cloud.celery_app import create_celery
from cloud.config import CloudSettings
from cloud.embedded_broker import EmbeddedBroker
from cloud.training.queue import TEACH_TASK
from domain_models.common import roc_auc
from edge_agent.frames import Frame
from edge_agent.runtime.registry import build_runner
from protocol.messages import utcnow
from simulators.camera_line import CameraLine, CameraLineConfig
from simulators.net import free_port
from tests.support.captures import ApiServer
from tests.support.e2e import Stack
from tests.support.mqtt import clear_session
from tests.support.tokens import bearer, mint_tokens
from tests.support.waiting import wait_for

GOOD = "good"


@dataclass(frozen=True)
class Backend:
    """Where the cloud keeps and moves things: broker, database, Celery transport."""

    name: str
    broker_url: str
    db_url: str
    share_group: str | None
    celery_broker_url: str


@contextmanager
def backend_named(
    name: str, folder: Path, pg_url: str | None, mosquitto: tuple[str, int] | None
) -> Iterator[Backend]:
    """``production``: Mosquitto, PostgreSQL, Redis. ``embedded``: the demo's embedded broker,
    SQLite and Celery's filesystem transport (no Redis)."""
    if name == "production":
        assert pg_url is not None
        assert mosquitto is not None
        host, port = mosquitto
        yield Backend(name, f"mqtt://{host}:{port}", pg_url, "ingest", "redis://127.0.0.1:6379/6")
        return
    broker = EmbeddedBroker(port=0)
    broker.start()
    try:
        # amqtt delivers no $share subscriptions: the embedded profile runs one plain subscriber.
        yield Backend(name, broker.url, f"sqlite:///{folder / 'cloud.db'}", None, "filesystem://")
    finally:
        broker.stop()


# --- the line's looks, phase by phase ------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """A phase's frames rendered aside, ready to be shown to the agent at once; name -> true label."""

    number: int
    staging: Path
    truth: dict[str, str]

    def show(self, folder: Path) -> None:
        """Rename the frames into the agent's folder (it never reads half a file).

        Last frame first: a pass of the replay that lists the folder mid-rename sees only the last
        few frames, so the next, whole pass does not show them again within a capture's span.
        """
        folder.mkdir(parents=True, exist_ok=True)
        for name in sorted(self.truth, reverse=True):
            (self.staging / name).rename(folder / name)
        self.staging.rmdir()


def stage_phase(root: Path, number: int, config: CameraLineConfig, start: int, count: int) -> Phase:
    """Frames ``start..start+count-1`` of ``config`` as ``<number>-NNNNN.png``, rendered aside."""
    staging = root / f"staging-{number}"
    staging.mkdir(parents=True)
    line = CameraLine(config)
    truth = {}
    for n in range(count):
        frame = line.frame(start + n)
        name = f"{number}-{n:05d}.png"
        assert cv2.imwrite(str(staging / name), frame.image)
        truth[name] = frame.truth.label
    return Phase(number, staging, truth)


def drop_phase(folder: Path, phase: int) -> None:
    """The line stops showing phase ``phase``: its frames leave the folder."""
    for path in folder.glob(f"{phase}-*.png"):
        path.unlink()


def phase_of(frame_name: str) -> int:
    return int(frame_name.split("-", 1)[0])


# --- the cloud -----------------------------------------------------------------------------


class WorkerQueue:
    """The API's TeachQueue: ``cloud.training.teach`` sent on the worker's own Celery app and queue."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def enqueue(self, run_id: int) -> None:
        self._app.send_task(TEACH_TASK, args=[run_id])


class TeachingApiServer(ApiServer):
    """:class:`ApiServer` handing training runs to this test's Celery worker."""

    def __init__(self, settings: CloudSettings, queue: WorkerQueue) -> None:
        super().__init__(settings)
        self.queue = queue

    def start(self) -> None:
        app = create_app(self.settings, None, None, self.queue)  # desired states on the broker
        config = uvicorn.Config(app, host="127.0.0.1", port=self.settings.api_port, log_config=None)
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, name="api", daemon=True)
        self._thread.start()
        wait_for(lambda: server.started, 20, "the API to start")


@dataclass
class TeachCloud:
    """The API on a real port, ingest, and a Celery worker (alert evaluation, training runs)."""

    url: str
    backend: Backend
    settings: CloudSettings
    tokens: dict[str, str]
    celery: Any

    def call(self, method: str, path: str, status: int = 200, role: str = "operator", **kwargs: Any) -> Any:
        answer = httpx.request(method, f"{self.url}/api/v1{path}", headers=bearer(self.tokens[role]),
                               timeout=30, **kwargs)  # fmt: skip
        assert answer.status_code == status, answer.text
        return answer.json() if answer.content else None

    def send(self, task: str) -> None:
        """Hand ``task`` to the worker, as Celery beat would."""
        self.celery.send_task(task)

    def latest(self, gateway: str) -> dict[str, Any] | None:
        """``gateway``'s newest stored result (its ``seq`` counts the frames it ran so far)."""
        page = self.call("GET", "/results", params={"gateway": gateway, "limit": 1})
        return page["items"][0] if page["items"] else None

    def results(self, gateway: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = self.call("GET", "/results", params={"gateway": gateway, "limit": 1000, "offset": offset})
            items.extend(page["items"])
            offset = page["next_offset"]
        return items

    def drift_events(self, gateway: str) -> list[dict[str, Any]]:
        page = self.call("GET", "/events", params={"gateway": gateway, "kind": "model_drift", "limit": 500})
        return list(page["items"])

    def download(self, run_id: int, names: Sequence[str], folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            answer = httpx.get(f"{self.url}/api/v1/training-runs/{run_id}/files/{name}",
                               headers=bearer(self.tokens["viewer"]), timeout=60)  # fmt: skip
            assert answer.status_code == 200, answer.text
            (folder / name).write_bytes(answer.content)


@contextmanager
def teach_cloud(stack: Stack, backend: Backend, mosquitto: tuple[str, int] | None) -> Iterator[TeachCloud]:
    """Ingest, the API and a solo-pool Celery worker on a queue of this test's own."""
    port = free_port()
    settings = stack.cloud(backend.db_url, backend.broker_url, backend.share_group).model_copy(
        update={
            "api_port": port,
            "public_url": f"http://127.0.0.1:{port}",  # where gateways download releases from
            "artifact_dir": str(stack.folder / "artifacts"),
            "celery_broker_url": backend.celery_broker_url,
            "celery_queue_dir": str(stack.folder / "celery-queue"),
        }
    )
    tokens = mint_tokens(settings.db_url)
    celery = create_celery(settings)
    # A queue of this test's own, so runs sharing the broker never take each other's tasks.
    celery.conf.task_default_queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = stack.ingest(settings)
    try:
        with ExitStack() as running:
            running.enter_context(
                start_worker(celery, pool="solo", perform_ping_check=False, shutdown_timeout=30)
            )
            api = TeachingApiServer(settings, WorkerQueue(celery))
            api.start()
            running.callback(api.stop)
            yield TeachCloud(api.url, backend, settings, tokens, celery)
    finally:
        celery.dispose_engines()
        worker.stop()
        if mosquitto is not None and backend.share_group is not None:
            clear_session(mosquitto, worker.client_id)


# --- a release on held-out frames ----------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """A release's raw anomaly scores and verdicts on frames whose truth is known."""

    defective: list[bool]
    scores: list[float]
    flagged: list[bool]

    @property
    def auroc(self) -> float:
        return roc_auc(np.asarray(self.defective, np.int64), np.asarray(self.scores))

    @property
    def false_reject_rate(self) -> float:
        good = [f for f, d in zip(self.flagged, self.defective, strict=True) if not d]
        return sum(good) / len(good)


def false_reject_slack(threshold_frames: int, frr: float, checked: int, quantile: float = 0.999) -> float:
    """How far above its target a threshold's false-reject rate, measured on ``checked`` good
    frames, may land by chance ``1 - quantile`` of the time.

    The threshold lets ``a = floor(frr n)`` of its ``n`` good scores reach it, so (good frames
    being exchangeable) the share of all good frames reaching it is Beta(a + 1, n - a), and the
    count among ``checked`` frames is Beta-binomial: the bound is that count's ``quantile``, over
    ``checked``. Cross-fitted scores come from heads fit on fewer frames, so they err high: the
    released model rejects no more than this.
    """
    allowed = math.floor(frr * threshold_frames)
    alpha, beta = allowed + 1, threshold_frames - allowed

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    total = 0.0
    for k in range(checked + 1):
        log_choose = math.lgamma(checked + 1) - math.lgamma(k + 1) - math.lgamma(checked - k + 1)
        total += math.exp(log_choose + log_beta(k + alpha, checked - k + beta) - log_beta(alpha, beta))
        if total >= quantile:
            return k / checked
    return 1.0


@dataclass(frozen=True)
class HeldOut:
    """Frames ``start..start+count-1`` of a line seed none of the scenario's frames came from."""

    config: CameraLineConfig
    count: int
    start: int = 0

    def judge(self, *manifests: Path, batch: int = 8) -> list[Judged]:
        """Run each release through the gateway's own runner on every frame (rendered once)."""
        runners = [build_runner(m, "defect", threads=2) for m in manifests]
        line = CameraLine(self.config)
        labels: list[str] = []
        scores: list[list[float]] = [[] for _ in manifests]
        flagged: list[list[bool]] = [[] for _ in manifests]
        end = self.start + self.count
        for first in range(self.start, end, batch):
            rendered = [line.frame(i) for i in range(first, min(first + batch, end))]
            labels.extend(f.truth.label for f in rendered)
            frames = [Frame("held-out", f"{f.index:05d}", utcnow(), f.image) for f in rendered]
            for runner, kept, verdicts in zip(runners, scores, flagged, strict=True):
                for prediction in runner.infer(frames):
                    output = prediction.output
                    raw = getattr(output, "raw_score", None)
                    assert raw is not None, f"{runner.manifest.name}: not an anomaly graph (no raw score)"
                    kept.append(float(raw))
                    verdicts.append(bool(output.is_defect))  # type: ignore[union-attr]
        defective = [label != GOOD for label in labels]
        return [Judged(defective, s, f) for s, f in zip(scores, flagged, strict=True)]
