"""The draft MODEL_CARD.md of ``factory-models train defect`` and its INT8 section from ``quantize``.

One tiny model (30 good frames + 12 calibration frames + 3 labelled defects per type, so it has a
type head; 128x96 input, 200-patch coreset) is trained through the CLI per module; the card's figures are checked against what the CLI printed
and what ``evaluate`` reports, never against fixed numbers.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from domain_models.anomaly.data import CALIBRATION, GOOD
from domain_models.anomaly.draft_card import CARD_NAME, INT8_BEGIN, INT8_END, TO_FILL_IN, record_int8
from domain_models.anomaly.quantize import quantize_model
from domain_models.cli import main
from protocol.manifest import CARD_PROMPT_MARK, artifact_path, load_manifest
from simulators.camera_line import CameraLineConfig
from simulators.mvtec import TEST_SEED_OFFSET, write_mvtec

SEED = 5
LINE = CameraLineConfig(seed=SEED, width=320, height=240)
TRAIN_ARGS = ["--width", "128", "--height", "96", "--coreset", "200", "--seed", "3", "--version", "0.4.0"]


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("card") / "sim"
    write_mvtec(root, LINE, 30, 10, 5, replace(LINE, seed=SEED + TEST_SEED_OFFSET), train_per_type=3)
    extra = write_mvtec(root.parent / "extra", replace(LINE, seed=SEED + 2000), 12, 0, 0)
    (root / CALIBRATION).mkdir()
    (extra / "train" / GOOD).rename(root / CALIBRATION / GOOD)
    return root


@pytest.fixture(scope="module")
def trained(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("card-model")
    code, printed = _run(["train", "defect", "--data", str(folder), "--out", str(out), *TRAIN_ARGS])
    assert code == 0
    return out / "defect-patchcore-0.4.0.manifest.json", printed


def _section(card: str, heading: str) -> str:
    start = card.index(heading)
    end = card.find("\n## ", start + len(heading))
    return card[start : end if end >= 0 else len(card)]


def _rows(text: str) -> list[list[str]]:
    """Body rows of every Markdown table in ``text`` (header and rule lines dropped)."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    rules = {i for i, line in enumerate(lines) if line.startswith("|---")}
    headers = {i - 1 for i in rules}
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for i, line in enumerate(lines)
        if i not in rules and i not in headers
    ]


def test_train_writes_a_card_whose_figures_are_the_printed_ones(trained: tuple[Path, str]) -> None:
    manifest_path, printed = trained
    card = (manifest_path.parent / CARD_NAME).read_text()
    assert card.startswith("# defect-patchcore 0.4.0: defect model (draft card)")
    assert f"wrote {manifest_path.parent / CARD_NAME}" in printed
    header = re.search(r": (\d+) test images, threshold ([\d.]+)", printed)
    image = re.search(r"image AUROC ([\d.]+)\s+pixel AUROC ([\d.]+)", printed)
    at = re.search(r"precision ([\d.]+)\s+recall ([\d.]+)\s+F1 ([\d.]+)\s+false rejects ([\d.]+)", printed)
    assert header, printed
    assert image, printed
    assert at, printed
    figures = _rows(_section(card, "## Held-out figures"))
    assert figures[0] == ["test/ (FP32)", header[1], image[1], image[2], *at.groups()]
    per_type = {row[1]: row[2:] for row in figures[1:]}
    printed_types = re.findall(
        r"^\s+(\w+)\s+n=(\d+)\s+image AUROC ([\d.]+)\s+recall ([\d.]+)$", printed, re.M
    )
    assert len(printed_types) == 4
    assert per_type == {kind: [n, auroc, recall] for kind, n, auroc, recall in printed_types}
    assert f"Threshold: {header[2]} (raw score)" in card
    # The kinds evaluation warns about are in the card too, word for word.
    warned = re.findall(r"^\s+WARNING (.+)$", printed, re.M)
    listed = re.findall(r"^- (\w+: only .+)$", _section(card, "## Held-out figures"), re.M)
    assert listed == warned


def test_the_card_explains_slow_threads_and_names_missed_kinds_as_limits() -> None:
    from domain_models.anomaly.draft_card import _known_limits, _threads_note

    assert _threads_note([["FP32", "1", "8.0", "9.0", "3.5"], ["FP32", "2", "6.0", "7.0", "3.5"]]) == ""
    slow = _threads_note([["FP32", "1", "8.0", "9.0", "3.5"], ["FP32", "2", "13.2", "41.7", "3.5"]])
    assert slow.strip().startswith("FP32 measured slower at 2 threads than at 1")
    assert _known_limits([]) == ""
    limits = _known_limits(["crack: only 0 of 5 caught ...", "scratch: only 1 of 5 caught ..."])
    assert "crack, scratch mostly pass the threshold" in limits


def test_card_figures_equal_the_evaluate_report(
    trained: tuple[Path, str], folder: Path, tmp_path: Path
) -> None:
    manifest_path, _ = trained
    figures_json = tmp_path / "eval.json"
    code, _ = _run(
        ["evaluate", "--model", str(manifest_path), "--data", str(folder), "--json", str(figures_json)]
    )
    assert code == 0
    report = json.loads(figures_json.read_text())
    card = (manifest_path.parent / CARD_NAME).read_text()
    row = _rows(_section(card, "## Held-out figures"))[0]
    keys = ["image_auroc", "pixel_auroc", "precision", "recall", "f1", "false_reject_rate"]
    assert row[2:] == [f"{report[k]:.4f}" for k in keys]
    assert f"{report['threshold']:.4f}" in card


def test_card_data_section_counts_the_images_used(trained: tuple[Path, str], folder: Path) -> None:
    manifest_path, _ = trained
    data = dict(_rows(_section((manifest_path.parent / CARD_NAME).read_text(), "## Data")))
    record = json.loads(manifest_path.with_name("defect-patchcore-0.4.0.calibration.json").read_text())
    held_train = sum(1 for p in record["holdout"] if p.startswith("train/"))
    assert data["data folder"] == str(folder)
    assert int(data["train/good images found"]) == len(list((folder / "train" / GOOD).iterdir()))
    assert int(data["train/good held out for the threshold"]) == held_train
    assert int(data["used to fit the memory bank"]) + held_train == int(data["train/good images found"])
    assert int(data["calibration/good (threshold only)"]) == len(
        list((folder / CALIBRATION / GOOD).iterdir())
    )
    for kind in ("good", "crack", "hole", "scratch", "stain"):
        assert int(data[f"test/{kind}"]) == len(list((folder / "test" / kind).iterdir()))
    assert data["labelled defects (type head)"].startswith("12 labelled defects of 4 type(s) (crack 3,")


def test_card_has_the_type_head_figures_train_printed(trained: tuple[Path, str]) -> None:
    manifest_path, printed = trained
    card = (manifest_path.parent / CARD_NAME).read_text()
    assert "Type head: yes, types crack, hole, scratch, stain" in card
    described = re.search(r"^type head: (.+)$", printed, re.M)
    assert described, printed
    assert f"| labelled defects (type head) | {described[1]} |" in card
    accuracy = re.search(r"type accuracy on (\d+) flagged test defects of known types: ([\d.]+)", printed)
    assert accuracy, printed
    section = _section(card, "## Defect types (supervised head)")
    assert f"type accuracy {accuracy[2]} on\n{accuracy[1]} flagged defects" in section
    per_type = re.findall(
        r"^\s+(\w+)\s+n=(\d+)\s+type precision ([\d.]+)\s+type recall ([\d.]+)$", printed, re.M
    )
    assert per_type
    rows = {row[0]: row[1:] for row in _rows(section.split("Confusion")[0])}
    assert rows == {t: [n, p, r] for t, n, p, r in per_type}


def test_card_latency_has_fp32_at_one_and_two_threads_with_its_size(trained: tuple[Path, str]) -> None:
    manifest_path, _ = trained
    rows = _rows(_section((manifest_path.parent / CARD_NAME).read_text(), "## Latency"))
    assert [(r[0], r[1]) for r in rows] == [("FP32", "1"), ("FP32", "2")]
    size = artifact_path(manifest_path, load_manifest(manifest_path)).stat().st_size / 1e6
    for _, _, p50, p90, size_mb in rows:
        assert 0 < float(p50) <= float(p90)
        assert size_mb == f"{size:.2f}"


def test_card_reproduce_command_names_every_option_and_the_seed(
    trained: tuple[Path, str], folder: Path
) -> None:
    manifest_path, _ = trained
    card = (manifest_path.parent / CARD_NAME).read_text()
    command = shlex.split(_section(card, "## Reproduce").split("```")[1])
    assert command[:3] == ["factory-models", "train", "defect"]
    options = dict(zip(command[3::2], command[4::2], strict=True))
    assert options["--data"] == str(folder)
    assert options["--out"] == str(manifest_path.parent)
    given = dict(zip(TRAIN_ARGS[::2], TRAIN_ARGS[1::2], strict=True))
    assert {k: options[k] for k in given} == given
    assert options["--frr"] == "0.01"
    assert options["--type-confidence"] == "0.5"
    assert options["--type-flag"] == "0.9"
    assert TO_FILL_IN in card
    assert "The camera" in _section(card, TO_FILL_IN)
    # Each prompt is marked, so factoryctl refuses to push the card before a person answered it.
    assert _section(card, TO_FILL_IN).count(CARD_PROMPT_MARK) == 3


def test_quantize_records_a_refusal_then_a_pass_in_the_card(
    trained: tuple[Path, str], folder: Path, tmp_path: Path
) -> None:
    manifest_path, _ = trained
    card_path = manifest_path.parent / CARD_NAME
    before = card_path.read_text()
    args = [
        "quantize",
        "defect",
        "--model",
        str(manifest_path),
        "--data",
        str(folder),
        "--out",
        str(tmp_path),
    ]
    code, printed = _run([*args, "--tolerance", "-100", "--calib-images", "8"])
    assert code == 1
    card = card_path.read_text()
    assert card.count(INT8_BEGIN) == 1
    section = card[card.index(INT8_BEGIN) : card.index(INT8_END)]
    assert "## INT8: refused by the gate, not written" in section
    assert "Refused: " in section
    assert "drop exceeds -100" in section
    gate_lines = [line.removeprefix("- ") for line in section.splitlines() if line.startswith("- ")]
    assert gate_lines == printed.strip().splitlines()
    latency = [(r[0], r[1]) for r in _rows(section.split("Latency (batch 1")[1])]
    assert latency == [("FP32", "1"), ("FP32", "2"), ("INT8", "1"), ("INT8", "2")]
    # The draft is kept, and the section sits before the user's own part.
    assert card.replace(card[card.index(INT8_BEGIN) : card.index(INT8_END) + len(INT8_END) + 2], "") == before
    assert card.index(INT8_END) < card.index(TO_FILL_IN)

    # 30 test images resolve about +-10 points: a 25-point tolerance lets INT8 through.
    code, printed = _run([*args, "--tolerance", "25", "--calib-images", "16"])
    assert code == 0, printed
    card = card_path.read_text()
    assert card.count(INT8_BEGIN) == card.count(INT8_END) == 1
    int8_manifest = next(tmp_path.glob("*int8*.manifest.json"))
    assert f"## INT8: passed the gate, written as `{int8_manifest.name}`" in card
    assert "refused" not in card
    assert card.startswith(before[: before.index(TO_FILL_IN)])
    # The INT8 release went to --out, another folder: its card goes with it.
    assert (tmp_path / CARD_NAME).read_text() == card


def test_an_older_release_without_a_card_gets_one_with_the_int8_section(
    trained: tuple[Path, str], folder: Path, tmp_path: Path
) -> None:
    manifest_path, _ = trained
    old = tmp_path / "old"
    old.mkdir()
    manifest = load_manifest(manifest_path)
    for name in [manifest_path.name, manifest.artifact, *manifest.files]:
        shutil.copyfile(manifest_path.parent / name, old / name)
    result = quantize_model(old / manifest_path.name, folder, tolerance=-100, out=tmp_path / "q", draws=50)
    card = record_int8(old / manifest_path.name, result).read_text()
    assert card.startswith("# defect-patchcore 0.4.0: INT8 quantization\n")
    assert "## INT8: refused by the gate" in card


def test_export_packages_the_card(trained: tuple[Path, str], tmp_path: Path) -> None:
    manifest_path, _ = trained
    code, printed = _run(["export", "defect", "--model", str(manifest_path), "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / CARD_NAME).read_text() == (manifest_path.parent / CARD_NAME).read_text()
    assert "packaged" in printed
