from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from lwcnn.data.augmentation import apply_augmentation, build_augmentation
from lwcnn.data.preprocessing import NETWORK_STRIDE, Preprocessing, pad_to_stride
from lwcnn.data.sampling import BalancedSampler


def test_preprocessing_resizes_scales_and_normalises():
    pre = Preprocessing.create(1, [8, 12], [0.5], [0.25])
    image = np.full((16, 24, 1), 255, np.uint8)
    x = pre(image)
    assert x.shape == (1, 8, 12) and x.dtype == np.float32
    assert np.allclose(x, (1.0 - 0.5) / 0.25)


def test_preprocessing_per_channel_and_round_trip():
    pre = Preprocessing.create(3, [8, 8], [0.0, 0.5, 1.0], [1.0])
    x = pre(np.zeros((8, 8, 3), np.uint8))
    assert x[:, 0, 0].tolist() == [0.0, -0.5, -1.0]
    assert Preprocessing.from_dict(pre.to_dict()) == pre


@pytest.mark.parametrize(
    ("args", "message"),
    [((2, [8, 8], [0.5], [0.25]), "channels"), ((1, [8], [0.5], [0.25]), "input size"),
     ((3, [8, 8], [0.5, 0.5], [0.25]), "normalize"), ((1, [8, 8], [0.5], [0.0]), "normalize")],
)  # fmt: skip
def test_preprocessing_rejects_bad_settings(args, message):
    with pytest.raises(ValueError, match=message):
        Preprocessing.create(*args)


def test_balanced_sampler_draws_per_class_and_is_seeded():
    labels = [0] * 10 + [1] * 3 + [2] * 50
    sampler = BalancedSampler(labels, per_class=20, seed=4)
    sampler.set_epoch(0)
    first = sampler.indices()
    assert len(first) == len(sampler) == 60
    assert Counter(labels[i] for i in first) == {0: 20, 1: 20, 2: 20}
    # the small class is used evenly: every image before any repeat
    assert Counter(i for i in first if labels[i] == 1).most_common()[-1][1] >= 6
    assert len({i for i in first if labels[i] == 2}) == 20  # no repeats when a class has enough
    assert sampler.indices() == first
    sampler.set_epoch(1)
    assert sampler.indices() != first


def test_unbalanced_sampler_yields_every_image_once():
    sampler = BalancedSampler([0, 0, 1, 1, 1], per_class=0, seed=0)
    assert sorted(sampler) == [0, 1, 2, 3, 4]


def test_augmentation_from_config_is_seeded_and_keeps_channels():
    augmentation = build_augmentation([{"name": "GaussNoise", "std_range": [0.1, 0.2], "p": 1.0}], seed=1)
    image = np.full((16, 16, 1), 128, np.uint8)
    augmentation.set_random_seed(3)
    a = apply_augmentation(augmentation, image)
    augmentation.set_random_seed(3)
    b = apply_augmentation(augmentation, image)
    assert a.shape == (16, 16, 1) and np.array_equal(a, b) and not np.array_equal(a, image)
    assert build_augmentation([]) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [([{"name": "Nope"}], "no transform 'Nope'"), ([{"p": 0.5}], "with a 'name'"),
     ([{"name": "GaussNoise", "std_range": "loud"}], "GaussNoise")],
)  # fmt: skip
def test_augmentation_errors_name_the_transform(spec, message):
    with pytest.raises(ValueError, match=message):
        build_augmentation(spec)


def test_sized_transforms_follow_the_input_size_and_refuse_another():
    crops = [{"name": "RandomResizedCrop", "scale": [0.5, 1.0], "p": 1.0}, {"name": "CenterCrop", "p": 1.0}]
    augmentation = build_augmentation(crops, seed=0, size=[24, 40])
    assert apply_augmentation(augmentation, np.zeros((24, 40, 1), np.uint8)).shape == (24, 40, 1)
    with pytest.raises(ValueError, match=r"RandomResizedCrop: outputs 16 x 16, not data.input_size 24 x 40"):
        build_augmentation([{"name": "RandomResizedCrop", "size": [16, 16]}], size=[24, 40])


def test_pad_to_stride_reflects_at_the_bottom_and_right_only():
    image = np.arange(50 * 63, dtype=np.float32).reshape(1, 1, 50, 63)
    padded = pad_to_stride(image, axes=(-2, -1))
    assert padded.shape == (1, 1, 64, 64) and NETWORK_STRIDE == 32
    assert np.array_equal(padded[..., :50, :63], image)  # the image itself is untouched, at the origin
    assert np.array_equal(padded[..., 50, :63], image[..., 48, :])  # row 50 mirrors row 48
    assert np.array_equal(padded[..., :50, 63], image[..., :, 61])
    assert pad_to_stride(padded, axes=(-2, -1)) is padded  # already a multiple: no copy
    mask = np.zeros((40, 1), bool)
    mask[39] = True
    assert pad_to_stride(mask, axes=(0, 1)).shape == (64, 32)  # a side of one pixel is repeated
    assert pad_to_stride(mask, axes=(0, 1))[39:, 0].all()
