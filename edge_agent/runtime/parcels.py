"""The parcel-line runner: detector -> oriented boxes -> tracker -> count once -> barcode, size, lane.

Per frame the ONNX model returns two probability maps at its input size: ``parcel`` (is this a
box top) and ``damage`` (crushed corner, tear). Components of the parcel map become oriented
boxes (``cv2.minAreaRect`` on the map upsampled to frame pixels). A centroid tracker per source
follows parcels across frames; a parcel is counted once, when its centre crosses the counting
line moving with the belt (left to right), and only then one ``ParcelOutput`` is emitted.

The line's facts (``mm_per_px`` camera calibration at belt height, ``count_line_x`` counting line
as a fraction of the frame width, ``routes`` sort table: first matching rule names the lane) come
from the slot's ``parcels`` section of the gateway config, so a model update keeps them; each one
unset there falls back to the release (``thresholds[...]``, ``files["parcel-routes.json"]``); see
``parcel_routes.py``. The model's own conventions, from the manifest:

- ``thresholds["parcel"]``: probability cut-off of the parcel map; ``thresholds["damage"]``: a
  parcel whose damage score (mean of its 10 most damaged map pixels) reaches it is damaged;
- ``files["parcel-damage*.onnx"]`` with ``thresholds["damage_crop"]`` (optional): a crop classifier
  (``parcel_damage.py``) whose score replaces the map's; a parcel is damaged when the mean over its
  frames wholly in view reaches the cut-off;
- ``thresholds["length_offset_px"]`` / ``["width_offset_px"]``: the detector's mean size bias,
  measured on calibration frames at release and subtracted here;
  ``thresholds["birth_window"]`` (fraction of width): a parcel first seen this close past the line
  counts at once (start-up, a missed frame; also what lets a one-frame golden sample count).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt
import zxingcpp

from edge_agent.frames import Frame, Image
from edge_agent.runtime.model import ModelLoadError, Prediction, ReleaseIdentity, open_session
from edge_agent.runtime.parcel_damage import DamageClassifier
from edge_agent.runtime.parcel_routes import ParcelLineSettings, RouteTable, line_facts
from edge_agent.runtime.preprocess import to_tensor
from edge_agent.runtime.tasks import Output
from protocol.inference import (
    BIRTH_WINDOW_KEY,
    DAMAGE_MAP_KEY,
    LENGTH_OFFSET_KEY,
    MIN_AREA_KEY,
    PARCEL_KEY,
    PARCEL_MAPS,
    WIDTH_OFFSET_KEY,
)
from protocol.manifest import ModelManifest, Preprocessing, load_manifest
from protocol.messages import Box, ParcelOutput, wire_text

log = logging.getLogger(__name__)

_FORMATS = zxingcpp.barcode_formats_from_str("Code128,EAN13,QRCode")
_SYMBOLOGY = {"Code128": "code128", "EAN13": "ean13", "QRCode": "qr"}
_MAX_DECODE_TRIES = 8  # frames per parcel spent reading its label
_VOTES = 3  # identical reads that settle a label early


@dataclass(frozen=True, slots=True)
class Detection:
    """One parcel in one frame, in frame pixels."""

    center: tuple[float, float]
    size: tuple[float, float]  # (length, width), length >= width
    angle_deg: float  # of the length axis, in [-90, 90)
    score: float
    damage: float  # top-10 mean of the damage map, or the crop classifier's P(damaged) if shipped


@dataclass(frozen=True, slots=True)
class FrameReading:
    """What the detector saw in one frame, for the slot's drift watch (``edge_agent.runtime.drift``)."""

    detections: int
    confidence: float  # mean score of the frame's detections; nan without any
    attempts: int  # barcode reads tried in this frame
    reads: int  # of which read a label


@dataclass
class _Track:
    track_id: int
    det: Detection
    velocity: float = 0.0
    missed: int = 0
    counted: bool = False
    reads: dict[tuple[str, str], int] = field(default_factory=dict)
    tries: int = 0
    damage: list[float] = field(default_factory=list)

    def barcode(self) -> tuple[str, str] | None:
        """The label's (text, symbology): the read seen most, if seen twice or if it is the only one."""
        if not self.reads:
            return None
        best, votes = max(self.reads.items(), key=lambda kv: kv[1])
        return best if votes >= 2 or len(self.reads) == 1 else None


@dataclass
class _SourceState:
    tracks: list[_Track] = field(default_factory=list)
    next_id: int = 0


def own_full(labels: npt.NDArray[np.int32], k: int) -> npt.NDArray[np.bool_]:
    """Component ``k`` grown by one pixel: damage sits on the box's very edge (a crushed corner)."""
    grown = cv2.dilate((labels == k).astype(np.uint8), np.ones((3, 3), np.uint8))
    return np.asarray(grown, dtype=bool)


def decode_barcode(image: Image, det: Detection) -> tuple[str, str] | None:
    """(text, symbology) of the label on a parcel: zxing-cpp on the upright crop, OpenCV as fallback."""
    (cx, cy), (length, width) = det.center, det.size
    pad, scale = 12, 2.0
    # Upright and upscaled 2x (cubic): a 2-px module resampled at an angle is then read reliably.
    w, h = int((length + 2 * pad) * scale), int((width + 2 * pad) * scale)
    m = cv2.getRotationMatrix2D((cx, cy), det.angle_deg, scale)
    m[0, 2] += w / 2 - cx
    m[1, 2] += h / 2 - cy
    crop = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    for result in zxingcpp.read_barcodes(gray, formats=_FORMATS):
        if result.valid and result.text:
            return result.text, _SYMBOLOGY.get(result.format.name, result.format.name.lower())
    # Fallback: OpenCV's own 1D and QR detectors, slower and weaker but a second opinion.
    text, _ = cv2.QRCodeDetector().detectAndDecode(gray)[:2]
    if text:
        return str(text), "qr"
    ok, infos, kinds, _ = cv2.barcode.BarcodeDetector().detectAndDecodeWithType(gray)
    for info, kind in zip(infos or (), kinds or (), strict=False):
        if ok and info:
            return str(info), str(kind).lower().replace("_", "").replace("-", "")
    return None


class ParcelRunner(ReleaseIdentity):
    """Runs a ``parcels`` model and the line logic; one tracker per frame source."""

    def __init__(
        self, manifest_path: Path, slot: str, threads: int = 1, line: ParcelLineSettings | None = None
    ) -> None:
        where = str(manifest_path)
        self.manifest: ModelManifest = load_manifest(manifest_path)
        self.slot = slot
        m = self.manifest
        if m.task != "parcels" or m.preprocessing is None:
            raise ModelLoadError(f"{where}: ParcelRunner runs image task 'parcels', manifest has {m.task!r}")
        self.preprocessing: Preprocessing = m.preprocessing
        facts = line_facts(manifest_path, m, line)  # the line's config first, the release's as fallback
        self.routes: RouteTable = facts.routes
        self._session = open_session(manifest_path, m, threads)
        self.dynamic_batch = isinstance(m.inputs[0].shape[0], str)
        t = m.thresholds
        self.mm_per_px, self.line_x = facts.mm_per_px, facts.count_line_x
        self.parcel_thr, self.damage_thr = t.get(PARCEL_KEY, 0.5), t.get(DAMAGE_MAP_KEY, 0.5)
        # A release's crop classifier (parcel_damage.py) replaces the damage map's score and cut-off.
        self.damage_model = DamageClassifier.from_release(manifest_path, m, threads)
        if self.damage_model is not None:
            self.damage_thr = self.damage_model.threshold
        self.min_area = t.get(MIN_AREA_KEY, 150.0)
        self.size_offset = (t.get(LENGTH_OFFSET_KEY, 0.0), t.get(WIDTH_OFFSET_KEY, 0.0))
        self.birth_window = t.get(BIRTH_WINDOW_KEY, 0.05)
        self._sources: dict[str, _SourceState] = {}
        # One reading per frame of the last infer() call: most frames count no parcel, so the drift
        # watch reads the detector's figures here rather than from the predictions.
        self.last_readings: tuple[FrameReading, ...] = ()
        self._attempts = self._reads = 0
        log.info("slot %s: loaded parcel model %s %s (%d thread(s)); %s",
                 slot, m.name, m.version, threads, facts.describe())  # fmt: skip

    def warm_up(self) -> None:
        """Run one black frame through the detector (no tracker state is touched)."""
        width, height = self.preprocessing.resize
        self.detect(np.zeros((height * 2, width * 2, 3), np.uint8))

    def maps(self, image: Image) -> npt.NDArray[np.float32]:
        """The model's (parcel, damage) probability maps for one frame, at model resolution."""
        tensor = to_tensor([image], self.preprocessing, self.manifest.inputs[0].dtype)
        out = self._session.run([self.manifest.outputs[0].name], {self.manifest.inputs[0].name: tensor})
        return np.asarray(out[0][0], np.float32)

    def detect(self, image: Image) -> list[Detection]:
        """Oriented parcel boxes in one frame (frame pixels)."""
        maps = self.maps(image)
        parcel, damage = maps[PARCEL_MAPS.index("parcel")], maps[PARCEL_MAPS.index("damage")]
        mh, mw = parcel.shape
        sx, sy = image.shape[1] / mw, image.shape[0] / mh
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            (parcel > self.parcel_thr).astype(np.uint8), connectivity=8
        )
        found: list[Detection] = []
        for k in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[k])
            if area < self.min_area:
                continue
            # Refine at frame resolution: the upsampled probability crosses 0.5 between model pixels.
            x0, y0, x1, y1 = max(x - 2, 0), max(y - 2, 0), min(x + w + 2, mw), min(y + h + 2, mh)
            own = cv2.dilate((labels[y0:y1, x0:x1] == k).astype(np.uint8), np.ones((3, 3), np.uint8))
            roi = parcel[y0:y1, x0:x1] * own
            up = cv2.resize(
                roi, (round((x1 - x0) * sx), round((y1 - y0) * sy)), interpolation=cv2.INTER_LINEAR
            )
            contours, _ = cv2.findContours(
                (up > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
            )
            if not contours:
                continue
            (cx, cy), (rw, rh), angle = cv2.minAreaRect(max(contours, key=cv2.contourArea))
            if rh > rw:  # make the first side the length
                rw, rh, angle = rh, rw, angle + 90.0
            rw, rh = max(rw - self.size_offset[0], 1.0), max(rh - self.size_offset[1], 1.0)
            angle = (angle + 90.0) % 180.0 - 90.0
            member = labels == k
            found.append(
                Detection(
                    center=(cx + x0 * sx, cy + y0 * sy), size=(rw, rh), angle_deg=angle,
                    score=float(parcel[member].mean()),
                    damage=float(np.sort(damage[own_full(labels, k)])[-10:].mean()),
                )
            )  # fmt: skip
        return found

    def infer(self, frames: Sequence[Frame]) -> list[Prediction]:
        """Detect, track and count; one prediction per parcel that crossed the line in these frames."""
        predictions: list[Prediction] = []
        readings: list[FrameReading] = []
        for frame in frames:
            started = time.perf_counter()
            self._attempts = self._reads = 0
            dets = self._rescore_damage(frame.image, self.detect(frame.image))
            outputs = self._step(frame, dets)
            latency_ms = (time.perf_counter() - started) * 1000.0
            confidence = float(np.mean([d.score for d in dets])) if dets else math.nan
            readings.append(FrameReading(len(dets), confidence, self._attempts, self._reads))
            # Prediction.output is typed for image tasks; ParcelOutput is a wire TaskOutput like them.
            predictions += [Prediction(frame, cast(Output, o), latency_ms) for o in outputs]
        self.last_readings = tuple(readings)
        return predictions

    def _rescore_damage(self, image: Image, dets: list[Detection]) -> list[Detection]:
        """With a crop classifier: each detection's damage is its crop's score (one batch per frame)."""
        if self.damage_model is None or not dets:
            return dets
        scores = self.damage_model.score_boxes(image, [(d.center, d.size, d.angle_deg) for d in dets])
        return [replace(d, damage=s) for d, s in zip(dets, scores, strict=True)]

    def reset(self, source: str | None = None) -> None:
        """Forget tracks (of one source, or all): e.g. between unrelated recordings."""
        if source is None:
            self._sources.clear()
        else:
            self._sources.pop(source, None)

    def _step(self, frame: Frame, dets: list[Detection]) -> list[ParcelOutput]:
        state = self._sources.setdefault(frame.source, _SourceState())
        height, width = frame.image.shape[:2]
        line = self.line_x * width
        pairs = sorted(
            ((abs(d.center[0] - (t.det.center[0] + t.velocity)) + abs(d.center[1] - t.det.center[1]), ti, di)
             for ti, t in enumerate(state.tracks) for di, d in enumerate(dets)),
        )  # fmt: skip
        used_t: set[int] = set()
        used_d: set[int] = set()
        outputs: list[ParcelOutput] = []
        for dist, ti, di in pairs:
            track, det = state.tracks[ti], dets[di]
            # A gate of half the parcel's width: neighbours on the belt are at least a gap apart.
            if ti in used_t or di in used_d or dist > max(det.size[1] * 0.5, 20.0):
                continue
            used_t.add(ti)
            used_d.add(di)
            prev_x = track.det.center[0]
            track.velocity = 0.5 * track.velocity + 0.5 * (det.center[0] - prev_x)
            track.det, track.missed = det, 0
            self._observe(track, frame.image, det, width, height)
            if not track.counted and prev_x < line <= det.center[0]:
                track.counted = True
                outputs.append(self._output(track))
        for ti, track in enumerate(state.tracks):
            if ti not in used_t:
                track.missed += 1
        state.tracks = [t for t in state.tracks if t.missed <= 2]
        for di, det in enumerate(dets):
            if di not in used_d:
                track = _Track(track_id=state.next_id, det=det)
                state.next_id += 1
                self._observe(track, frame.image, det, width, height)
                state.tracks.append(track)
                # First seen just past the line: it crossed while unseen (a start-up, a missed
                # frame). Boxes enter at the frame edge, far from the line, so this never doubles.
                if line <= det.center[0] < line + self.birth_window * width:
                    track.counted = True
                    outputs.append(self._output(track))
        return outputs

    def _observe(self, track: _Track, image: Image, det: Detection, width: int, height: int) -> None:
        """Gather evidence while the parcel is wholly in view: damage, and a barcode read."""
        (cx, _cy), (length, _) = det.center, det.size
        if cx - length / 2 < 4 or cx + length / 2 > width - 4:
            return  # cut by the frame edge: a partial label or box would only mislead
        track.damage.append(det.damage)
        # Read until one value is seen _VOTES times: a rotated EAN-13 at 2 px per module can misread
        # with a valid checksum, even twice in a row.
        if (
            track.tries < _MAX_DECODE_TRIES
            and not track.counted
            and max(track.reads.values(), default=0) < _VOTES
        ):
            track.tries += 1
            self._attempts += 1
            read = decode_barcode(image, det)
            if read is not None:
                self._reads += 1
                track.reads[read] = track.reads.get(read, 0) + 1

    def _output(self, track: _Track) -> ParcelOutput:
        det = track.det
        length_mm, width_mm = det.size[0] * self.mm_per_px, det.size[1] * self.mm_per_px
        # The mean over the frames seen: the calibration's per-frame cut-off applies, and one noisy
        # frame does not flag a box.
        damage = float(np.mean(track.damage)) if track.damage else None
        damaged = damage is not None and damage >= self.damage_thr
        read = track.barcode()
        barcode, symbology = read if read else (None, None)
        (cx, cy), (length, width) = det.center, det.size
        pts = cv2.boxPoints(((cx, cy), (length, width), det.angle_deg))
        x0, y0 = np.floor(pts.min(axis=0)).clip(0)
        x1, y1 = np.ceil(pts.max(axis=0))
        return ParcelOutput(
            label=self.routes.route(barcode, length_mm, damaged),
            score=round(min(max(det.score, 0.0), 1.0), 6),
            track_id=track.track_id,
            box=Box(x=int(x0), y=int(y0), w=int(x1 - x0), h=int(y1 - y0)),
            angle_deg=round(det.angle_deg, 2),
            length_mm=round(length_mm, 1),
            width_mm=round(width_mm, 1),
            # Routed on what the label says; sent with control characters (a GS1 separator, a
            # NUL) spelled out and cut to the wire's limit, so no label can invalidate a result.
            barcode=None if barcode is None else wire_text(barcode, 256),
            symbology=None if symbology is None else wire_text(symbology, 32),
            damaged=damaged,
            # The evidence beside the verdict, so the console can say how damaged and against what.
            damage_score=None if damage is None else round(max(damage, 0.0), 6),
            damage_threshold=self.damage_thr if math.isfinite(self.damage_thr) else None,
        )
