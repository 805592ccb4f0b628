"""The parcel runner: counts each parcel once, reads Code 128 / EAN-13 / QR, sizes boxes in mm, routes."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from domain_models.parcels.data import eval_config
from edge_agent.frames import Frame
from edge_agent.runtime.model import ModelLoadError
from edge_agent.runtime.parcel_routes import ParcelLineSettings, RouteRule, RouteTable
from edge_agent.runtime.parcels import Detection, ParcelRunner, decode_barcode
from edge_agent.runtime.registry import SlotSettings, build_runner
from protocol.inference import DAMAGE_PREFIX, DAMAGE_THRESHOLD, ROUTES_FILE
from protocol.manifest import sha256_file
from protocol.messages import ParcelOutput, utcnow
from simulators.parcel_line import ParcelLine, ParcelLineConfig, ParcelTruth

ARTIFACTS = Path(__file__).resolve().parents[3] / "domain_models" / "parcels" / "artifacts"
MANIFEST = ARTIFACTS / "parcel-detector-1.1.0.manifest.json"
INT8_MANIFEST = ARTIFACTS / "parcel-detector-int8-1.1.0.manifest.json"


def _detection(p: ParcelTruth) -> Detection:
    return Detection(center=p.center, size=p.size_px, angle_deg=p.angle_deg, score=1.0,
                     damage=0.0 if p.damage == "none" else 100.0)  # fmt: skip


class _TruthRunner(ParcelRunner):
    """The real line logic fed with perfect detections: isolates tracking and counting from the network."""

    truth: list[ParcelTruth] = []  # noqa: RUF012 - set per frame by _run

    def detect(self, image: np.ndarray) -> list[Detection]:
        return [_detection(p) for p in self.truth]


def _run(runner: ParcelRunner, line: ParcelLine, frames: int) -> list[tuple[int, ParcelOutput]]:
    outputs = []
    for i in range(frames):
        sim = line.frame(i)
        if isinstance(runner, _TruthRunner):
            runner.truth = list(sim.truth.parcels)
        for pred in runner.infer([Frame("cam", str(i), utcnow(), sim.image)]):
            assert isinstance(pred.output, ParcelOutput)
            outputs.append((i, pred.output))
    return outputs


def _frames_at_the_line(line: ParcelLine, count: int) -> list[int]:
    """Indices of the first frame after each of the first ``count`` crossings (no rendering needed)."""
    return [i + 1 for i in range(400) if line.crossings(480.0, i, i + 2)][:count]


def test_registry_builds_the_parcel_runner_for_task_parcels() -> None:
    runner = build_runner(MANIFEST, "parcels")
    assert isinstance(runner, ParcelRunner)
    assert runner.loaded.task == "parcels"


def test_decoder_reads_rotated_code128_ean13_and_qr_labels() -> None:
    line = ParcelLine(ParcelLineConfig(seed=12))
    tried: dict[str, int] = {}
    read: dict[str, int] = {}
    for i in _frames_at_the_line(line, 18):
        frame = line.frame(i)
        for p in frame.truth.parcels:
            if abs(p.center[0] - 480) > 40:
                continue
            tried[p.symbology] = tried.get(p.symbology, 0) + 1
            read[p.symbology] = read.get(p.symbology, 0) + (
                decode_barcode(frame.image, _detection(p)) == (p.barcode, p.symbology)
            )
    assert set(tried) == {"code128", "ean13", "qr"}
    for symbology, n in tried.items():
        assert read.get(symbology, 0) >= 0.9 * n, (symbology, read, tried)


def test_each_parcel_is_counted_exactly_once_with_exact_facts_given_perfect_detections() -> None:
    line = ParcelLine(ParcelLineConfig(seed=33))
    runner = _TruthRunner(MANIFEST, "truth")
    outputs = _run(runner, line, 120)
    expected = set(line.crossings(480.0, 0, 120))
    assert len(outputs) == len(expected) >= 6
    by_track = {o.track_id for _, o in outputs}
    assert len(by_track) == len(outputs)
    for index, out in outputs:
        truth = min(line.frame(index).truth.parcels, key=lambda p: abs(p.center[0] - 480))
        assert truth.parcel_id in expected
        assert out.length_mm == pytest.approx(truth.length_mm, abs=0.1)
        # Perfect detections score damage 100 or 0; a release with the flag off never raises it.
        assert out.damaged == (truth.damage != "none" and runner.damage_thr <= 100.0)
        assert out.label == runner.routes.route(out.barcode, out.length_mm, out.damaged)
    assert sum(o.barcode is not None for _, o in outputs) >= 0.9 * len(outputs)


def test_model_counts_an_easy_sequence_exactly_and_sizes_boxes_within_tolerance() -> None:
    line = ParcelLine(eval_config(seed=0, k=0, unseen=False))
    runner = ParcelRunner(MANIFEST, "parcels")
    outputs = _run(runner, line, 100)
    expected = set(line.crossings(480.0, 0, 100))
    assert len(outputs) == len(expected) >= 5
    errors = []
    for index, out in outputs:
        truth = min(line.frame(index).truth.parcels, key=lambda p: abs(p.center[0] - 480))
        errors += [abs(out.length_mm - truth.length_mm), abs(out.width_mm - truth.width_mm)]  # type: ignore[operator]
        if out.barcode is not None:
            assert out.barcode == truth.barcode
    assert float(np.mean(errors)) < 10.0
    assert {o.symbology for _, o in outputs if o.barcode} & {"code128", "qr"}


def test_frames_without_a_crossing_give_no_prediction_and_sources_track_separately() -> None:
    line = ParcelLine(ParcelLineConfig(seed=7))
    runner = ParcelRunner(MANIFEST, "parcels")
    empty = np.full((540, 960, 3), 50, np.uint8)
    assert runner.infer([Frame("cam", "0", utcnow(), empty)]) == []
    first = next(i for i in range(200) if line.crossings(480.0, i, i + 2))
    a = runner.infer([Frame("a", str(i), utcnow(), line.frame(i).image) for i in range(first - 3, first + 2)])
    b = runner.infer([Frame("b", str(first + 3), utcnow(), line.frame(first + 3).image)])
    assert len(a) == 1
    assert b == []  # source b never saw it cross (it starts past the birth window)


def test_routes_first_matching_rule_wins() -> None:
    table = RouteTable(
        rules=(RouteRule(lane="reject", damaged=True), RouteRule(lane="manual", has_barcode=False),
               RouteRule(lane="big", min_length_mm=450), RouteRule(lane="north", prefixes=("1", "PX1"))),
        default="other",
    )  # fmt: skip
    assert table.route("123", 300, damaged=True) == "reject"
    assert table.route(None, 300, damaged=False) == "manual"
    assert table.route("1234", 500, damaged=False) == "big"
    assert table.route("PX1-000001", 300, damaged=False) == "north"
    assert table.route("2999", 300, damaged=False) == "other"


def test_missing_route_table_or_calibration_is_refused_by_name(tmp_path: Path) -> None:
    for name in [MANIFEST.name, *json.loads(MANIFEST.read_text())["files"], "parcel-detector-1.1.0.onnx"]:
        shutil.copy2(ARTIFACTS / name, tmp_path / name)
    data = json.loads((tmp_path / MANIFEST.name).read_text())
    del data["thresholds"]["mm_per_px"]
    (tmp_path / MANIFEST.name).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=r"\['mm_per_px'\] are required .* gateway config"):
        ParcelRunner(tmp_path / MANIFEST.name, "x")
    # The line's config supplies what the release leaves out.
    assert (
        ParcelRunner(tmp_path / MANIFEST.name, "x", line=ParcelLineSettings(mm_per_px=1.5)).mm_per_px == 1.5
    )
    data = json.loads(MANIFEST.read_text())
    del data["files"][ROUTES_FILE]
    (tmp_path / MANIFEST.name).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=f"no sort table.*{ROUTES_FILE}"):
        ParcelRunner(tmp_path / MANIFEST.name, "x")
    table = RouteTable(default="all")
    assert ParcelRunner(tmp_path / MANIFEST.name, "x", line=ParcelLineSettings(routes=table)).routes == table


def _crossing_outputs(settings: SlotSettings) -> list[ParcelOutput]:
    """The real model over the frames around the first crossing of a fixed sequence."""
    line = ParcelLine(ParcelLineConfig(seed=7))
    first = next(i for i in range(200) if line.crossings(480.0, i, i + 2))
    runner = build_runner(MANIFEST, "parcels", settings=settings)
    frames = [Frame("cam", str(i), utcnow(), line.frame(i).image) for i in range(first - 3, first + 2)]
    outputs = [p.output for p in runner.infer(frames)]
    assert all(isinstance(o, ParcelOutput) for o in outputs)
    return cast(list[ParcelOutput], outputs)


def test_config_calibration_and_sort_table_override_the_release(caplog: pytest.LogCaptureFixture) -> None:
    release = _crossing_outputs(SlotSettings())
    assert len(release) == 1
    parcel = release[0]
    assert parcel.barcode is not None
    assert parcel.length_mm is not None
    assert parcel.width_mm is not None
    assert parcel.label == ParcelRunner(MANIFEST, "x").routes.route(
        parcel.barcode, parcel.length_mm, parcel.damaged
    )
    # This line's camera sees twice the mm per pixel, and sorts that label's prefix to its own lane.
    table = RouteTable(rules=(RouteRule(lane="line-lane", prefixes=(parcel.barcode[:2],)),), default="other")
    caplog.set_level(logging.INFO, logger="edge_agent.runtime.parcels")
    (line,) = _crossing_outputs(SlotSettings(ParcelLineSettings(mm_per_px=2 * 1.25, routes=table)))
    assert line.label == "line-lane" != parcel.label
    # Both sides are rounded to 0.1 mm: the doubled one may differ by up to 0.15 mm.
    assert line.length_mm == pytest.approx(2 * parcel.length_mm, abs=0.16)
    assert line.width_mm == pytest.approx(2 * parcel.width_mm, abs=0.16)
    assert (line.barcode, line.track_id, line.box) == (parcel.barcode, parcel.track_id, parcel.box)
    (logged,) = [r.getMessage() for r in caplog.records if "loaded parcel model" in r.getMessage()]
    assert "mm_per_px 2.5 (config)" in logged
    assert "count_line_x 0.5 (manifest)" in logged
    assert "routes 1 rule(s) + default other (config)" in logged


def test_config_counting_line_moves_where_parcels_are_counted() -> None:
    line = ParcelLine(ParcelLineConfig(seed=33))
    runner = _TruthRunner(MANIFEST, "truth", line=ParcelLineSettings(count_line_x=0.25))
    counted = [i for i, _ in _run(runner, line, 80)]
    at_quarter = [i + 1 for i in range(80) if line.crossings(240.0, i, i + 2)]
    # Each parcel is counted on the frame it passes x=240 (a quarter of 960 px), not the manifest's 480.
    assert counted
    assert counted == sorted({i for i in at_quarter if i < 80})
    assert set(counted) != {i + 1 for i in range(80) if line.crossings(480.0, i, i + 2)}


def test_a_parcels_section_for_a_model_of_another_task_is_refused_at_load() -> None:
    defect = ARTIFACTS.parents[1] / "defect" / "artifacts" / "defect-cnn-1.0.0.manifest.json"
    with pytest.raises(ModelLoadError, match="has a 'parcels' section .* task is 'defect', not 'parcels'"):
        build_runner(defect, "defect", settings=SlotSettings(ParcelLineSettings(mm_per_px=1.0)))


# The damage crop classifier (parcel-damage-*.onnx listed in the release's files).


def _damage_runner(manifest: Path, routes: RouteTable | None = None) -> ParcelRunner:
    return ParcelRunner(manifest, "parcels", line=ParcelLineSettings(routes=routes) if routes else None)


def test_damage_classifier_flags_damaged_parcels_and_a_damaged_rule_routes_them() -> None:
    from dataclasses import replace  # imported here: this section was appended to a shared file

    table = RouteTable(rules=(RouteRule(lane="rework", damaged=True),), default="ship")
    runner = _damage_runner(MANIFEST, table)
    assert runner.damage_model is not None
    # A held-out line (seeds never trained on) with half its boxes damaged.
    line = ParcelLine(replace(eval_config(seed=0, k=64, unseen=False), damage_rate=0.5))
    outputs = _run(runner, line, 150)
    pairs = []
    for index, out in outputs:
        truth = min(line.frame(index).truth.parcels, key=lambda p: abs(p.center[0] - 480))
        pairs.append((out, truth.damage != "none"))
        assert out.label == ("rework" if out.damaged else "ship")
        # The verdict's evidence rides along: the mean damage score against the cut-off applied.
        assert out.damage_threshold == runner.damage_thr
        assert out.damage_score is not None
        assert (out.damage_score >= out.damage_threshold) == out.damaged
    assert len(pairs) >= 7
    assert 2 <= sum(d for _, d in pairs) <= len(pairs) - 2  # both kinds were on the belt
    wrong = [(o.track_id, o.damaged, d) for o, d in pairs if o.damaged != d]
    assert len(wrong) <= 1, wrong


def test_a_release_without_the_damage_file_runs_as_before(tmp_path: Path) -> None:
    data = json.loads(MANIFEST.read_text())
    damage_files = [n for n in data["files"] if n.startswith(DAMAGE_PREFIX)]
    assert damage_files  # the bundled release ships one
    for name in [data["artifact"], *data["files"]]:
        if name not in damage_files:
            shutil.copy2(ARTIFACTS / name, tmp_path / name)
    for name in damage_files:
        del data["files"][name]
    del data["thresholds"][DAMAGE_THRESHOLD]
    (tmp_path / MANIFEST.name).write_text(json.dumps(data))
    runner = _damage_runner(tmp_path / MANIFEST.name)
    assert runner.damage_model is None
    assert runner.damage_thr == data["thresholds"]["damage"]
    line = ParcelLine(ParcelLineConfig(seed=7))
    first = next(i for i in range(200) if line.crossings(480.0, i, i + 2))
    (pred,) = runner.infer(
        [Frame("a", str(i), utcnow(), line.frame(i).image) for i in range(first - 3, first + 2)]
    )
    assert isinstance(pred.output, ParcelOutput)
    assert pred.output.barcode is not None


def test_a_listed_damage_file_that_is_not_a_crop_classifier_is_refused_by_name(tmp_path: Path) -> None:
    from protocol.manifest import ManifestError

    data = json.loads(MANIFEST.read_text())
    for name in [data["artifact"], *data["files"]]:
        shutil.copy2(ARTIFACTS / name, tmp_path / name)
    (damage_file,) = [n for n in data["files"] if n.startswith(DAMAGE_PREFIX)]
    # The detector's graph in place of the classifier, hashed as the manifest demands.
    shutil.copy2(ARTIFACTS / data["artifact"], tmp_path / damage_file)
    data["files"][damage_file] = sha256_file(tmp_path / damage_file)
    (tmp_path / MANIFEST.name).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=f"damage classifier {damage_file}: .*input names"):
        _damage_runner(tmp_path / MANIFEST.name)
    data["files"][damage_file] = "0" * 64  # and a file whose hash does not match is refused first
    (tmp_path / MANIFEST.name).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="sha256"):
        _damage_runner(tmp_path / MANIFEST.name)
