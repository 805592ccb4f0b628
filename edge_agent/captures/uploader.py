"""The capture uploader: its own thread, apart from the results outbox, so frames never delay results.

For each finished capture, oldest first: every file not yet confirmed is sent content-addressed
and resumably (the cloud says how many bytes it holds; the upload continues from there, and a
file it holds whole is never sent again), each confirmation recorded on disk; then the capture's
manifest is registered and its frames are deleted. While the cloud is away it waits, from
``retry_min_s`` doubling to ``retry_max_s`` (times a random 1-1.5, so gateways back from one outage
do not all come at once); nothing is dropped meanwhile, and a restart picks up from the records.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from edge_agent.captures.cloud_api import CaptureApi, CloudUnavailable, UploadRefused
from edge_agent.captures.config import CaptureConfig
from edge_agent.captures.events import report
from edge_agent.captures.store import CaptureRecord, CaptureStore
from edge_agent.outbox_streams import EventDraft
from protocol.captures import CaptureFile

log = logging.getLogger(__name__)

IDLE_POLL_S = 2.0
# Registration answers 422 with this when a file it was told of is not in its store: upload again.
NOT_UPLOADED = "files not uploaded yet"


class Uploader:
    """Uploads finished captures, one at a time, until the stop event."""

    def __init__(
        self,
        store: CaptureStore,
        api: CaptureApi,
        config: CaptureConfig,
        identity: tuple[str, str, str],
        emit: Callable[[EventDraft], None],
        stop: threading.Event,
    ) -> None:
        self.store = store
        self._api = api
        self._config = config
        self._gateway_id, self._line, self._station = identity
        self._emit = emit
        self._stop = stop
        self._wake = threading.Event()
        self._delay = config.retry_min_s
        self.bytes_sent = 0  # for tests and the curious: what actually went over the wire
        self.failures = 0  # upload rounds that ended waiting for the cloud
        self._thread = threading.Thread(target=self._run, name="capture-upload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """A capture finished: look now rather than at the next poll."""
        self._wake.set()

    def join(self, timeout: float) -> bool:
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            pending = self.store.in_phase("finished")
            if not pending:
                self._wake.wait(IDLE_POLL_S)
                self._wake.clear()
                continue
            try:
                for record in pending:
                    if self._stop.is_set():
                        return
                    self.upload(record)
                self._delay = self._config.retry_min_s
            except CloudUnavailable as exc:
                self._back_off(f"cloud unavailable: {exc}")
            except UploadRefused as exc:  # the token or the gateway's identity: waiting may help after a fix
                self._back_off(f"cloud refused the gateway: {exc}", logging.ERROR)
            except Exception as exc:  # noqa: BLE001 - a full disk or a bug must not end uploads for good
                log.exception("captures: upload failed unexpectedly")
                self._back_off(f"unexpected: {exc}", logging.ERROR)

    def _back_off(self, why: str, level: int = logging.WARNING) -> None:
        self.failures += 1
        wait = self._delay * random.uniform(1.0, 1.5)  # noqa: S311 - spreading retries, not a secret
        log.log(level, "captures: upload paused %.1f s: %s", wait, why)
        self._stop.wait(wait)
        self._delay = min(self._delay * 2, self._config.retry_max_s)

    def upload(self, record: CaptureRecord) -> None:
        """Upload one capture's files and register it; raises CloudUnavailable or UploadRefused for
        problems of the cloud or the token, records a refusal of the capture itself."""
        try:
            for file in record.files:
                if file.sha256 not in record.uploaded:
                    self._send(record.capture_id, file)
                    self.store.mark_uploaded(record.capture_id, file.sha256)
            self._api.register(record.manifest(self._gateway_id, self._line, self._station))
        except UploadRefused as exc:
            if exc.status in (401, 403):
                raise
            if exc.status == 422 and NOT_UPLOADED in exc.detail:
                log.warning(
                    "captures: %s: the cloud lost files it had confirmed; uploading again", record.capture_id
                )
                self.store.forget_uploads(record.capture_id)
                raise CloudUnavailable(exc.detail) from None
            # A frame whose bytes no longer hash right, a capture id the cloud gave another
            # gateway: retrying cannot help. Everything stays on disk for a person to look at.
            self.store.mark_rejected(record.capture_id, str(exc))
            report(self._emit, record, "rejected", "error", f"the cloud refused the capture: {exc}")
            return
        self.store.mark_registered(record.capture_id)
        report(self._emit, record, "uploaded", "info", f"{len(record.files)} frame(s), {record.bytes} bytes")

    def _send(self, capture_id: str, file: CaptureFile) -> None:
        """One file, from where the cloud's copy ends; nothing when it holds it whole."""
        size = file.size_bytes
        held = self._api.held(file.sha256)
        if held >= size:
            return
        chunk = self._config.chunk_bytes
        with self.store.file_path(capture_id, file.name).open("rb") as fh:
            while held < size:
                if self._stop.is_set():
                    raise CloudUnavailable("the agent is stopping")
                fh.seek(held)
                data = fh.read(chunk)
                try:
                    held = self._api.put_chunk(file.sha256, size, held, data)
                except UploadRefused as exc:
                    if exc.status != 409:
                        raise
                    resume_at = self._api.held(file.sha256)
                    if resume_at == held:  # a conflict that is not about where to resume
                        raise
                    held = resume_at  # the cloud holds more or less than we thought: go on from there
                    continue
                self.bytes_sent += len(data)
