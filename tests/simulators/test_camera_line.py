"""The camera line is deterministic and its ground truth says where the defect really is."""

from __future__ import annotations

import numpy as np
import pytest

from protocol.inference import DEFECT_LABELS, DEFECT_TYPES, GOOD_LABEL
from simulators.camera_line import PART_SHAPES, CameraLine, CameraLineConfig


def test_frame_depends_only_on_seed_and_index_not_order() -> None:
    a = CameraLine(CameraLineConfig(seed=11, defect_rate=0.5))
    b = CameraLine(CameraLineConfig(seed=11, defect_rate=0.5))
    a_late, a_early = a.frame(9), a.frame(2)
    b_early, b_late = b.frame(2), b.frame(9)
    assert np.array_equal(a_late.image, b_late.image)
    assert np.array_equal(a_early.image, b_early.image)
    assert a_late.truth == b_late.truth
    assert a_early.truth == b_early.truth
    assert a_early.image.shape == (480, 640, 3)
    assert a_early.image.dtype == np.uint8


def test_other_seed_and_other_index_give_other_frames() -> None:
    one = CameraLine(CameraLineConfig(seed=1)).frame(0).image.astype(np.int16)
    other_seed = CameraLine(CameraLineConfig(seed=2)).frame(0).image.astype(np.int16)
    next_frame = CameraLine(CameraLineConfig(seed=1)).frame(1).image.astype(np.int16)
    assert np.abs(one - other_seed).mean() > 5
    assert np.abs(one - next_frame).mean() > 5


def test_defect_rate_and_labels_follow_config() -> None:
    truths = [
        CameraLine(CameraLineConfig(seed=5, defect_rate=0.5, width=320, height=240)).frame(i).truth
        for i in range(120)
    ]
    defective = [t for t in truths if t.label != GOOD_LABEL]
    assert 35 <= len(defective) <= 85
    assert {t.label for t in defective} == set(DEFECT_TYPES)
    assert {t.part for t in truths} == set(PART_SHAPES)
    assert all((t.box is None) == (t.label == GOOD_LABEL) for t in truths)
    assert all(t.label in DEFECT_LABELS for t in truths)

    never = CameraLine(CameraLineConfig(seed=5, defect_rate=0.0, width=320, height=240))
    always = CameraLine(
        CameraLineConfig(seed=5, defect_rate=1.0, defect_types=("hole",), width=320, height=240)
    )
    assert all(never.frame(i).truth.label == GOOD_LABEL for i in range(20))
    assert all(always.frame(i).truth.label == "hole" for i in range(20))


@pytest.mark.parametrize("defect", DEFECT_TYPES)
def test_truth_box_covers_exactly_the_changed_pixels(defect: str) -> None:
    # Same seed with and without defects: frames differ only by the defect's pixels.
    clean = CameraLine(CameraLineConfig(seed=21, defect_rate=0.0, defect_types=(defect,)))
    broken = CameraLine(CameraLineConfig(seed=21, defect_rate=1.0, defect_types=(defect,)))
    for index in range(4):
        frame = broken.frame(index)
        box = frame.truth.box
        assert frame.truth.label == defect
        assert box is not None
        assert box.x >= 0
        assert box.y >= 0
        assert box.w >= 3
        assert box.h >= 3
        assert box.x + box.w <= 640
        assert box.y + box.h <= 480
        diff = np.abs(frame.image.astype(np.int16) - clean.frame(index).image.astype(np.int16)).max(axis=2)
        ys, xs = np.nonzero(diff > 12)
        assert len(xs) >= 10, f"{defect} at frame {index} changed too few pixels"
        # 2 px of slack: a stain's blurred fringe fades out just beyond its box.
        assert xs.min() >= box.x - 2
        assert xs.max() <= box.x + box.w + 1
        assert ys.min() >= box.y - 2
        assert ys.max() <= box.y + box.h + 1
        outside = diff.copy()
        outside[max(box.y - 3, 0) : box.y + box.h + 3, max(box.x - 3, 0) : box.x + box.w + 3] = 0
        assert outside.max() <= 12


def test_unseen_appearance_looks_different_but_keeps_truth() -> None:
    config = CameraLineConfig(seed=3, defect_rate=0.5)
    seen, unseen = CameraLine(config).frame(4), CameraLine(config.unseen_appearance()).frame(4)
    assert unseen.truth == seen.truth
    # The warm light pushes red over blue; the training light does not.
    assert unseen.image[..., 2].mean() - unseen.image[..., 0].mean() > 10
    assert abs(seen.image[..., 2].mean() - seen.image[..., 0].mean()) < 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"defect_rate": 1.5}, "defect_rate"),
        ({"defect_types": ("dent",)}, "defect_types"),
        ({"width": 50}, "frame size"),
        ({"lighting": "disco"}, "lighting"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CameraLineConfig(seed=1, **kwargs)  # type: ignore[arg-type]


def test_negative_index_is_refused() -> None:
    with pytest.raises(ValueError, match="index"):
        CameraLine(CameraLineConfig(seed=1)).frame(-1)
