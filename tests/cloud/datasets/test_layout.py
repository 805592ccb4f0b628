"""The MVTec layout of a dataset: good frames to train/good, defect kinds to test/<kind>, a share of
good frames held out only when defects were labelled, skipped and unlabelled frames left out."""

from __future__ import annotations

from typing import Any

from cloud.datasets.layout import HOLDOUT_EVERY, MIN_TRAIN_GOOD, mvtec_layout, shortfall


def files(*labels: str | None) -> list[dict[str, Any]]:
    return [
        {"name": f"{n:06d}.png", "sha256": f"{n:064x}", "label": label} for n, label in enumerate(labels, 1)
    ]


def test_a_capture_of_good_parts_goes_to_train_good_whole() -> None:
    placed = mvtec_layout(files(*[None] * 20), capture_label="good")
    assert [p.path for p in placed] == [f"train/good/{n:06d}.png" for n in range(1, 21)]
    assert shortfall(placed) is None


def test_defect_kinds_go_to_test_and_every_fifth_good_frame_is_held_out_beside_them() -> None:
    labels = ["good"] * 15 + ["scratch", "dent", "skip", None]
    placed = {p.name: p.path for p in mvtec_layout(files(*labels), capture_label=None)}
    assert placed["000016.png"] == "test/scratch/000016.png"
    assert placed["000017.png"] == "test/dent/000017.png"
    assert "000018.png" not in placed
    assert "000019.png" not in placed
    held_out = sorted(name for name, path in placed.items() if path.startswith("test/good/"))
    assert held_out == [f"{n:06d}.png" for n in range(HOLDOUT_EVERY, 16, HOLDOUT_EVERY)]


def test_a_files_own_label_wins_over_the_captures() -> None:
    placed = mvtec_layout(files("scratch", None, "skip"), capture_label="good")
    assert [(p.name, p.label) for p in placed] == [("000001.png", "scratch"), ("000002.png", "good")]


def test_too_few_good_frames_are_named_as_the_reason_training_would_refuse() -> None:
    problem = shortfall(mvtec_layout(files(*["good"] * (MIN_TRAIN_GOOD - 1)), capture_label=None))
    assert problem is not None
    assert f"needs at least {MIN_TRAIN_GOOD}" in problem
