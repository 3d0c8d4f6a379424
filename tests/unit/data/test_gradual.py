from __future__ import annotations

import numpy as np
import pytest

from lwcnn.data.augmentation import build_augmentation
from lwcnn.data.sampling import GradualSchedule, zoom_crop


def test_zoom_ratio_falls_linearly_from_3_6_to_1():
    schedule = GradualSchedule(zoom_steps=20000, clean_from=80000)
    assert schedule.ratio(0) == 3.6
    assert schedule.ratio(10000) == pytest.approx(2.3)
    assert schedule.ratio(15000) == pytest.approx(1.65)
    assert schedule.ratio(20000) == schedule.ratio(50000) == 1.0


def test_phases_follow_the_paper():
    schedule = GradualSchedule(zoom_steps=20000, clean_from=80000)
    assert [schedule.phase(s) for s in (0, 19999, 20000, 79999, 80000)] == [
        "zoom",
        "zoom",
        "whole",
        "whole",
        "all",
    ]


def test_schedule_points_as_steps_or_fractions():
    assert GradualSchedule.for_run(20000, 80000, 100000) == GradualSchedule(20000, 80000)
    assert GradualSchedule.for_run(0.2, 0.5, 1000) == GradualSchedule(200, 500)
    with pytest.raises(ValueError, match="zoom_steps <= clean_from"):
        GradualSchedule(500, 100)


@pytest.mark.parametrize("ratio", [3.6, 2.0, 1.3])
@pytest.mark.parametrize("seed", range(20))
def test_zoomed_crops_contain_the_defect(ratio, seed):
    rng = np.random.default_rng(seed)
    height, width = 125, 50  # KolektorSDD-like, non-square
    mask = np.zeros((height, width), bool)
    y, x = rng.integers(0, height - 6), rng.integers(0, width - 4)
    mask[y : y + 6, x : x + 4] = True
    image = np.arange(height * width, dtype=np.int64).reshape(height, width, 1)
    crop, crop_mask = zoom_crop(image, mask, ratio, rng)
    assert crop.shape[:2] == crop_mask.shape == (round(height / ratio), round(width / ratio))
    assert crop_mask.sum() == mask.sum()  # a defect that fits is kept whole
    top, left = divmod(int(crop[0, 0, 0]), width)  # the crop is the image's window at (top, left)
    assert np.array_equal(crop_mask, mask[top : top + crop.shape[0], left : left + crop.shape[1]])


def test_a_defect_larger_than_the_window_is_still_in_it():
    mask = np.ones((100, 100), bool)
    _, crop_mask = zoom_crop(np.zeros((100, 100, 1)), mask, 3.6, np.random.default_rng(0))
    assert crop_mask.any() and crop_mask.shape == (28, 28)


def test_joint_augmentation_keeps_masks_aligned():
    augmentation = build_augmentation(
        [
            {"name": "HorizontalFlip", "p": 1.0},
            {"name": "Affine", "translate_percent": [0.1, 0.2], "rotate": [10, 30], "p": 1.0},
        ],
        seed=0,
    )
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 5:20] = 1
    image = (mask * 255)[:, :, None].astype(np.uint8)
    for seed in range(5):
        augmentation.set_random_seed(seed)
        out = augmentation(image=image, mask=mask)
        moved_image, moved_mask = out["image"].reshape(64, 64), out["mask"]
        assert moved_mask.any()
        # the image (bilinear) and the mask (nearest) moved together: they agree but at edges
        assert np.mean((moved_image > 127) == (moved_mask > 0)) > 0.99
