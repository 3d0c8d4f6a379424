"""What ``lwcnn pretrain`` learns from: formula-driven textures, synthetic defects with their masks,
and the stream of samples named by their number (what makes a resumed run see the same images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lwcnn.data.pretext import MASK_STRIDE, PretextImages, PretextSettings, StreamSampler, user_images
from lwcnn.data.procedural import FAMILIES, category_formula, colourise, render, texture
from lwcnn.data.synthetic_defects import DEFECT_KINDS, paint_defects
from lwcnn.errors import DataError
from tests.synthetic import write_image


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_renders_a_textured_image_in_range_the_same_for_the_same_seeds(family):
    category = FAMILIES.index(family)  # categories cycle through the families
    formula = category_formula(category, seed=3)
    assert formula.family == family and formula == category_formula(category, seed=3)
    first = render(formula, 64, np.random.default_rng(1))
    again = render(formula, 64, np.random.default_rng(1))
    other = render(formula, 64, np.random.default_rng(2))
    assert first.shape == (64, 64) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.std() > 0.02, "a flat image teaches nothing"


def test_categories_differ_in_their_formulas():
    params = [category_formula(c).params for c in range(len(FAMILIES), 3 * len(FAMILIES))]
    assert all(p != q for i, p in enumerate(params) for q in params[i + 1 :])


def test_colourise_gives_rgb_or_the_gray_repeated():
    gray = texture(category_formula(0), 32, np.random.default_rng(0))
    kinds = set()
    for seed in range(12):
        rgb = colourise(gray, np.random.default_rng(seed))
        assert rgb.shape == (32, 32, 3)
        kinds.add("gray" if np.array_equal(rgb[..., 0], rgb[..., 2]) else "colour")
    assert kinds == {"gray", "colour"}


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_each_defect_kind_changes_the_pixels_its_mask_names(kind):
    index = DEFECT_KINDS.index(kind)
    rng = np.random.default_rng(5)
    surface = texture(category_formula(0), 96, np.random.default_rng(0))
    foreign = texture(category_formula(3), 96, np.random.default_rng(0))
    painted, mask, present = paint_defects(surface, rng, 1, lambda side: foreign[:side, :side], kinds=[kind])
    assert mask.shape == surface.shape and mask.max() == index + 1
    assert present.tolist() == [1.0 if i == index else 0.0 for i in range(len(DEFECT_KINDS))]
    change = np.abs(painted - surface)
    assert (change[mask > 0] > 1e-3).mean() > 0.5, f"{kind}: most of its mask must differ from the surface"
    # soft-edged kinds (stains, spots) fade out past their mask: the change there is much smaller
    assert change[mask > 0].mean() > 4 * change[mask == 0].mean(), f"{kind}: the change lies in its mask"


SMALL = PretextSettings(size=32, channels=3, categories=6, instances=2, seed=1, defect_share=1.0)


def test_a_sample_is_a_function_of_its_number_whatever_came_before():
    forward, backward = PretextImages(SMALL, 40), PretextImages(SMALL, 40)
    ahead = [forward[n] for n in range(8)]
    behind = [backward[n] for n in reversed(range(8))][::-1]
    for a, b in zip(ahead, behind, strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)
    image, category, defect_map, kinds = ahead[0]
    assert image.shape == (3, 32, 32) and 0 <= int(category) < SMALL.categories
    assert defect_map.shape == (32 // MASK_STRIDE,) * 2 and kinds.shape == (len(DEFECT_KINDS),)
    assert all(float(sample[2].max()) == 1.0 for sample in ahead), "defect_share 1: every sample has one"


def test_held_out_samples_come_from_instances_training_never_draws():
    train, held = PretextImages(SMALL, 4), PretextImages(SMALL, 4, held_out=True)
    train[0], held[0]
    assert not set(train._bases) & set(held._bases) or all(
        not np.array_equal(train._bases[k], held._bases[k]) for k in set(train._bases) & set(held._bases)
    )


def test_the_classify_stream_has_no_defects_and_one_channel_is_gray():
    settings = PretextSettings(size=32, channels=1, categories=4, instances=1, defects=False)
    for n in range(6):
        image, _, defect_map, kinds = PretextImages(settings, 6)[n]
        assert image.shape == (1, 32, 32) and defect_map.sum() == 0 and kinds.sum() == 0


def test_user_images_are_cut_into_samples_without_a_category(tmp_path):
    for i in range(3):
        write_image(tmp_path / "own" / f"{i}.png", size=(90, 70), seed=i)
    settings = PretextSettings(size=32, channels=1, categories=4, instances=1, images_share=1.0)
    dataset = PretextImages(settings, 5, user_images(tmp_path / "own"))
    assert all(int(dataset[n][1]) == -1 for n in range(5))
    with pytest.raises(DataError, match="no such folder"):
        user_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        user_images(tmp_path / "empty")


def test_the_stream_sampler_numbers_samples_by_step():
    assert list(StreamSampler(2, 4, 3)) == [6, 7, 8, 9, 10, 11] and len(StreamSampler(2, 4, 3)) == 6
