"""Segmentation samples: the gradual-training sampler, crops that hold the defect, joint augmentation
that keeps masks on their defects, scaling that keeps thin defects, and the splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lwcnn.data.augmentation import apply_joint_augmentation, build_augmentation
from lwcnn.data.classification import DataError
from lwcnn.data.masked_images import MaskedImages, MaskedSample, scan_image_mask_folders, scan_segmentation
from lwcnn.data.preprocessing import Preprocessing
from lwcnn.data.sampling import GradualSchedule, SegmentationSampler
from lwcnn.data.segmentation_crops import SegmentationDataset
from lwcnn.data.splits import segmentation_split
from tests.synthetic import make_masked_folder

GRAY = Preprocessing.create(1, (64, 64), [0.5], [0.25])


def test_sampler_follows_the_gradual_schedule():
    defective = [True, False, False, True, False, False]
    schedule = GradualSchedule(zoom_steps=2, clean_from=4)
    sampler = SegmentationSampler(
        defective, per_epoch=8, global_batch=4, seed=0, schedule=schedule, defective_fraction=0.5
    )
    requests = []
    for epoch in range(4):  # 2 steps per epoch
        sampler.set_epoch(epoch)
        requests += list(sampler)
    steps = [requests[4 * s : 4 * s + 4] for s in range(8)]
    for step, batch in enumerate(steps):
        indices, ratios = [r[0] for r in batch], [r[1] for r in batch]
        if step < 2:  # zoom: defective images, ratio 3.6 -> 1 linearly
            assert all(defective[i] for i in indices)
            assert ratios == [pytest.approx(schedule.ratio(step))] * 4
        elif step < 4:  # whole defective images, random crops
            assert all(defective[i] for i in indices) and ratios == [0.0] * 4
        else:
            assert ratios == [0.0] * 4
    late = [r[0] for batch in steps[4:] for r in batch]
    assert any(not defective[i] for i in late) and any(defective[i] for i in late)
    assert schedule.ratio(0) == pytest.approx(3.6) and schedule.ratio(1) == pytest.approx(2.3)


def test_sampler_is_reproducible_and_shares_global_batches_between_ranks():
    defective = [True, False] * 5
    single = SegmentationSampler(defective, per_epoch=16, global_batch=8, seed=3, defective_fraction=0.5)
    single.set_epoch(1)
    ranks = [
        SegmentationSampler(defective, 16, 8, seed=3, defective_fraction=0.5, rank=r, world_size=2)
        for r in (0, 1)
    ]
    for sampler in ranks:
        sampler.set_epoch(1)
    order, first, second = list(single), list(ranks[0]), list(ranks[1])
    assert order == single.epoch_requests() == list(single)  # same epoch, same requests
    assert len(first) == len(second) == len(ranks[0]) == 8
    for k in range(2):
        assert order[8 * k : 8 * k + 8] == first[4 * k : 4 * k + 4] + second[4 * k : 4 * k + 4]
    with pytest.raises(DataError, match="no defective images"):
        SegmentationSampler([False, False], 4, 2, seed=0)


def test_zoomed_crops_contain_the_defect_and_random_crops_have_the_crop_size(tmp_path):
    images = scan_image_mask_folders(make_masked_folder(tmp_path / "d"))
    dataset = SegmentationDataset(images, GRAY, crop=(32, 48))
    for seed in range(10):
        for ratio in (3.6, 2.0, 1.0):
            image, mask = dataset.sample((0, ratio, seed))
            assert image.shape == (32, 48, 1) and mask.shape == (32, 48)
            assert mask.any()  # the window was chosen around the defect
            # ... and the mask still lies on it (zoomed bilinearly, edge pixels mix with the background,
            # whose brightest is 119; a nearest-neighbour mask pixel is at least a quarter defect)
            assert image[mask > 0].min() > 119 and image[mask > 0].mean() > 200
        image, mask = dataset.sample((1, 0.0, seed))
        assert image.shape == (32, 48, 1) and not mask.any()


def test_images_smaller_than_the_crop_are_padded(tmp_path):
    images = scan_image_mask_folders(make_masked_folder(tmp_path / "d", size=(20, 30)))
    image, mask = SegmentationDataset(images, GRAY, crop=(32, 48)).sample((0, 0.0, 0))
    assert image.shape == (32, 48, 1) and mask.shape == (32, 48) and mask.sum() == 24


def test_crops_reach_the_network_padded_to_its_stride_as_inspection_pads_images(tmp_path):
    """A crop whose sides are not multiples of 32 (200 x 200 for NEU-DET's whole images) trains on
    the same reflected border that the engine adds at inspection, its mask reflected with it."""
    images = scan_image_mask_folders(make_masked_folder(tmp_path / "d", size=(60, 80)))
    dataset = SegmentationDataset(images, GRAY, crop=(40, 70))
    image, mask = dataset.sample((0, 0.0, 3))
    x, y = dataset[(0, 0.0, 3)]
    assert tuple(x.shape) == (1, 64, 96) and tuple(y.shape) == (64, 96)
    assert np.allclose(x.numpy()[:, :40, :70], GRAY.normalize(image))
    assert np.array_equal(y.numpy()[:40, :70], mask)
    assert np.array_equal(y.numpy()[40, :70], mask[38])  # reflected, as the image is


def test_joint_augmentation_keeps_masks_on_their_defects():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 100, (48, 64, 1), dtype=np.uint8)
    mask = np.zeros((48, 64), bool)
    mask[10:20, 5:25] = True
    image[mask] = 255
    augmentation = build_augmentation(
        [
            {"name": "HorizontalFlip", "p": 1.0},
            {"name": "Affine", "translate_px": [-6, 6], "p": 1.0},
            {"name": "RandomRotate90", "p": 1.0},
        ],
        seed=0,
    )
    for _ in range(5):
        out, out_mask = apply_joint_augmentation(augmentation, image, mask)
        assert out_mask.dtype == bool and out_mask.any()
        assert out[..., 0][out_mask].min() == 255  # every mask pixel is still a defect pixel


def test_rescale_mask_keeps_a_one_pixel_crack():
    half = Preprocessing.create(1, (64, 64), [0.5], [0.25], scale=0.5)
    mask = np.zeros((40, 60), bool)
    mask[:, 31] = True  # one pixel wide: nearest-neighbour halving could drop it
    small = half.rescale_mask(mask)
    assert small.shape == (20, 30) and small[:, 15].all() and small.sum() == 20
    assert half.rescale(np.zeros((40, 60, 1), np.uint8)).shape == (20, 30, 1)


def test_scan_segmentation_guesses_the_layout(tmp_path):
    assert scan_segmentation(make_masked_folder(tmp_path / "m")).layout == "masks"
    (tmp_path / "k" / "kos01").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "k" / "kos01" / "Part0.jpg")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "k" / "kos01" / "Part0_label.png")
    assert scan_segmentation(tmp_path / "k").layout == "kolektorsdd"
    with pytest.raises(DataError, match="a segmentation layout is one of"):
        scan_segmentation(tmp_path / "m", "neu")


def test_fraction_split_is_stratified_and_reproducible(tmp_path):
    images = scan_image_mask_folders(make_masked_folder(tmp_path / "d", count=20))
    split = segmentation_split(images, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=1)
    assert split == segmentation_split(images, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=1)
    defective = {s.image.as_posix() for s in images.samples if s.defective}
    for part, size in (("train", 6), ("val", 2), ("test", 2)):
        assert sum(p in defective for p in split.parts[part]) == size  # of the 10 defective images
        assert len(split.parts[part]) == 2 * size
    assert sorted(p for ps in split.parts.values() for p in ps) == sorted(
        s.image.as_posix() for s in images.samples
    )


def kolektor_like(groups: int = 6) -> MaskedImages:
    samples = [
        MaskedSample(
            Path(f"kos{g:02d}/Part{k}.jpg"),
            Path(f"kos{g:02d}/Part{k}_label.png") if k == 0 else None,
            group=f"kos{g:02d}",
        )
        for g in range(1, groups + 1)
        for k in range(3)
    ]
    return MaskedImages(Path("/data"), "kolektorsdd", tuple(samples))


def groups_of(paths) -> set[str]:
    return {p.split("/")[0] for p in paths}


def test_fold_split_holds_out_a_fold_and_keeps_items_whole(tmp_path):
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"folds": [["kos01", "kos02"], ["kos03", "kos04"], ["kos05", "kos06"]]}))
    split = segmentation_split(kolektor_like(), {"folds": str(folds), "test_fold": 1, "val": 0.25}, seed=0)
    assert groups_of(split.parts["test"]) == {"kos03", "kos04"}
    assert len(groups_of(split.parts["val"])) == 1
    assert not groups_of(split.parts["val"]) & groups_of(split.parts["train"])
    assert len(groups_of(split.parts["train"])) == 3
    with pytest.raises(DataError, match="test_fold 3 out of range"):
        segmentation_split(kolektor_like(), {"folds": str(folds), "test_fold": 3}, seed=0)
    folds.write_text(json.dumps({"folds": [["kos01"], ["kos99"]]}))
    with pytest.raises(DataError, match="'kos99' of the folds is not in"):
        segmentation_split(kolektor_like(), {"folds": str(folds)}, seed=0)


def test_kolektorsdd_fraction_split_is_by_item():
    split = segmentation_split(kolektor_like(), {"train": 0.5, "test": 0.5}, seed=0)
    assert not groups_of(split.parts["train"]) & groups_of(split.parts["test"])
    assert len(groups_of(split.parts["train"])) == 3


def test_dagm_split_keeps_its_own_test_part():
    samples = tuple(
        MaskedSample(
            Path(f"Class1/{part.title()}/{k:04d}.PNG"), None if k % 2 else Path(f"l{k}"), "Class1", part
        )
        for part in ("train", "test")
        for k in range(8)
    )
    images = MaskedImages(Path("/d"), "dagm", samples)
    split = segmentation_split(images, {"val": 0.25}, seed=0)
    assert all("/Test/" in p for p in split.parts["test"]) and len(split.parts["test"]) == 8
    assert len(split.parts["val"]) == 2 and len(split.parts["train"]) == 6
    with pytest.raises(ValueError, match="give only 'val'"):
        segmentation_split(images, {"train": 0.5, "val": 0.5}, seed=0)


def test_random_crops_reach_the_image_borders(tmp_path):
    """Inspection sees every image's border rows; training crops must too, not once in hundreds."""
    images = scan_image_mask_folders(make_masked_folder(tmp_path / "d", size=(200, 48)))
    dataset = SegmentationDataset(images, GRAY, crop=(80, 48))
    coverage = np.zeros(200)
    for seed in range(400):
        image, _ = dataset.sample((1, 0.0, seed))
        source = dataset.read(1)[0][:, :, 0]
        top = next(t for t in range(121) if np.array_equal(source[t : t + 80], image[:, :, 0]))
        coverage[top : top + 80] += 1
    middle = coverage[80:120].mean()
    assert coverage[0] > 0.4 * middle and coverage[-1] > 0.4 * middle
