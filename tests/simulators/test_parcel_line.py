"""The parcel line is deterministic, moves boxes across frames, and its labels are real, readable barcodes."""

from __future__ import annotations

import json
import urllib.request

import cv2
import numpy as np
import pytest
import zxingcpp

from simulators.mjpeg import MjpegConfig, MjpegServer
from simulators.parcel_line import ParcelLine, ParcelLineConfig, ParcelTruth


def _upright_crop(image: np.ndarray, p: ParcelTruth) -> np.ndarray:
    (cx, cy), (length, width) = p.center, p.size_px
    m = cv2.getRotationMatrix2D((cx, cy), p.angle_deg, 1.0)
    m[0, 2] += length / 2 + 10 - cx
    m[1, 2] += width / 2 + 10 - cy
    return cv2.warpAffine(image, m, (int(length + 20), int(width + 20)), borderMode=cv2.BORDER_REPLICATE)


def test_frame_depends_only_on_config_and_index_not_order() -> None:
    a, b = ParcelLine(ParcelLineConfig(seed=3)), ParcelLine(ParcelLineConfig(seed=3))
    a_late, a_early = a.frame(40), a.frame(5)
    b_early, b_late = b.frame(5), b.frame(40)
    assert np.array_equal(a_late.image, b_late.image)
    assert np.array_equal(a_early.image, b_early.image)
    assert a_late.truth == b_late.truth
    assert a_early.image.shape == (540, 960, 3)
    assert not np.array_equal(ParcelLine(ParcelLineConfig(seed=4)).frame(40).image, a_late.image)


def test_parcels_ride_the_belt_keeping_their_id_and_facts() -> None:
    line = ParcelLine(ParcelLineConfig(seed=8))
    seen: dict[int, list[ParcelTruth]] = {}
    for i in range(60):
        for p in line.frame(i).truth.parcels:
            seen.setdefault(p.parcel_id, []).append(p)
    assert len(seen) >= 3
    edges = {p.parcel_id for i in (0, 59) for p in line.frame(i).truth.parcels}
    for pid, track in seen.items():
        if pid in edges:
            continue  # in view at frame 0 or still in view at frame 59: only part of its ride
        assert len(track) >= 5  # several frames per box: counting needs a tracker
        steps = np.diff([p.center[0] for p in track])
        assert np.allclose(steps, line.config.speed_px)
        assert len({(p.barcode, p.length_mm, p.width_mm, p.damage, p.center[1]) for p in track}) == 1


def test_truth_box_and_footprint_match_the_rendered_mask() -> None:
    cfg = ParcelLineConfig(seed=5)
    line = ParcelLine(cfg)
    checked = 0
    for i in range(0, 80, 4):
        frame = line.frame(i)
        for p in frame.truth.parcels:
            length = p.size_px[0]
            if p.center[0] - length / 2 < 0 or p.center[0] + length / 2 > cfg.width or p.damage != "none":
                continue
            (x, y), (w, h), _ = cv2.minAreaRect(cv2.findNonZero(
                (cv2.fillConvexPoly(np.zeros(frame.parcel_mask.shape, np.uint8), p.corners().astype(np.int32), 1)
                 * (frame.parcel_mask > 0.5)).astype(np.uint8)))  # fmt: skip
            assert abs(x - p.center[0]) < 2
            assert abs(y - p.center[1]) < 2
            assert abs(max(w, h) - length) < 3
            assert abs(min(w, h) - p.size_px[1]) < 3
            assert p.length_mm == pytest.approx(length * cfg.mm_per_px)
            checked += 1
    assert checked >= 5


def test_every_symbology_is_drawn_and_zxing_reads_it_back() -> None:
    line = ParcelLine(ParcelLineConfig(seed=21))
    read: dict[str, int] = {}
    total: dict[str, int] = {}
    for i in range(0, 200, 6):
        frame = line.frame(i)
        for p in frame.truth.parcels:
            if abs(p.center[0] - 480) > 200:
                continue
            total[p.symbology] = total.get(p.symbology, 0) + 1
            results = zxingcpp.read_barcodes(_upright_crop(frame.image, p))
            if any(r.text == p.barcode for r in results):
                read[p.symbology] = read.get(p.symbology, 0) + 1
    assert set(total) == {"code128", "ean13", "qr"}
    for sym, n in total.items():
        assert read.get(sym, 0) >= 0.8 * n, (sym, read, total)


def test_damage_is_marked_in_the_truth_and_the_mask() -> None:
    line = ParcelLine(ParcelLineConfig(seed=2, damage_rate=1.0))
    frame = line.frame(20)
    assert frame.truth.parcels
    assert {p.damage for p in frame.truth.parcels} <= {"crushed_corner", "tear"}
    assert frame.damage_mask.sum() > 100
    clean = ParcelLine(ParcelLineConfig(seed=2, damage_rate=0.0)).frame(20)
    assert clean.damage_mask.sum() == 0


def test_unseen_settings_change_belt_light_and_sizes() -> None:
    base = ParcelLineConfig(seed=1)
    unseen = base.unseen()
    assert (unseen.belt, unseen.lighting) != (base.belt, base.lighting)
    assert unseen.length_mm != base.length_mm
    a, b = ParcelLine(base).frame(10).image, ParcelLine(unseen).frame(10).image
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mm_per_px": 0.01}, "mm_per_px"),
        ({"length_mm": (900.0, 1000.0)}, "does not fit"),
        ({"damage_rate": 2.0}, "damage_rate"),
        ({"gap_px": (5, 10)}, "gap_px"),
    ],
)
def test_bad_config_is_refused_naming_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParcelLineConfig(seed=0, **change)  # type: ignore[arg-type]


def test_mjpeg_server_serves_the_parcel_line_and_its_truth() -> None:
    line = ParcelLine(ParcelLineConfig(seed=4))
    server = MjpegServer(line, MjpegConfig(port=0, fps=20.0))  # type: ignore[arg-type]
    server.start()
    try:
        with urllib.request.urlopen(f"{server.url}/truth", timeout=5) as resp:  # noqa: S310 - local test server
            truth = json.loads(resp.read())
    finally:
        server.stop()
    assert truth["frames"]
    first = truth["frames"][0]
    assert first["mm_per_px"] == 1.25
    assert all({"barcode", "corners", "length_mm"} <= set(p) for p in first["parcels"])
