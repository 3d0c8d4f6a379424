"""Loading workers kept for a run (forked once, not every epoch) draw the same augmentations as
workers forked afresh each epoch: the epoch travels with each request."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from lwcnn.data.augmentation import build_augmentation
from lwcnn.data.classification import scan_class_folders
from lwcnn.data.datasets import ClassificationDataset, EpochRequest, EpochTaggedSampler, seed_worker
from lwcnn.data.preprocessing import Preprocessing
from lwcnn.data.sampling import BalancedSampler
from tests.synthetic import make_class_folders

NOISE = [{"name": "GaussNoise", "std_range": [0.1, 0.2], "p": 1.0}, {"name": "HorizontalFlip", "p": 0.5}]


def _dataset(root):
    images = scan_class_folders(make_class_folders(root, per_class=4, size=16))
    preprocessing = Preprocessing.create(1, [16, 16], [0.5], [0.25])
    return ClassificationDataset(images, preprocessing, build_augmentation(NOISE))


def _epochs(dataset, sampler, loader, epochs=3):
    batches = []
    for epoch in epochs if isinstance(epochs, list) else range(epochs):
        sampler.set_epoch(epoch)
        dataset.set_epoch(7, epoch)
        batches.append(torch.cat([images for images, _ in loader]))
    return batches


def test_kept_workers_draw_what_fresh_workers_draw_every_epoch(tmp_path):
    dataset = _dataset(tmp_path / "d")
    sampler = BalancedSampler(dataset.images.labels, per_class=0, seed=0)

    def loader(**kwargs):
        return DataLoader(dataset, batch_size=4, num_workers=2, worker_init_fn=seed_worker, **kwargs)

    fresh = _epochs(dataset, sampler, loader(sampler=sampler))
    kept_loader = loader(sampler=EpochTaggedSampler(sampler, dataset), persistent_workers=True)
    kept = _epochs(dataset, sampler, kept_loader)
    assert all(torch.equal(a, b) for a, b in zip(fresh, kept, strict=True))
    assert not torch.equal(kept[0], kept[1])  # each epoch its own augmentations
    # a resumed run starts at a later epoch in its kept workers: that epoch's draws, not the first's
    resumed_loader = loader(sampler=EpochTaggedSampler(sampler, dataset), persistent_workers=True)
    resumed = _epochs(dataset, sampler, resumed_loader, [2])
    assert torch.equal(resumed[0], fresh[2])


def test_tagged_request_in_the_training_process_reseeds_only_on_a_new_epoch(tmp_path):
    dataset = _dataset(tmp_path / "d")
    dataset.set_epoch(7, 1)
    first = dataset[EpochRequest((7, 1, 0), 0)][0]
    dataset.set_epoch(7, 1)
    assert torch.equal(dataset[0][0], first)  # same epoch: the plain stream, no second reseed
    other = dataset[EpochRequest((7, 2, 0), 0)][0]
    assert dataset.epoch == 2 and not torch.equal(other, first)
