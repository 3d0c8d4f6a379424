"""The moving average of weights that ``train.ema`` validates and saves."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lwcnn.training.averaging import WeightAverage


def small_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))


def test_the_average_follows_the_weights_at_the_ramped_decay():
    model = small_model()
    average = WeightAverage(model, decay=0.9)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
        model[1].running_mean.add_(2.0)
        model[1].num_batches_tracked.add_(5)
    average.update(model, step=0)

    d = average.decay_at(0)
    assert d == pytest.approx(0.1)  # early steps barely count the initialisation
    averaged = average.module.state_dict()
    for name, value in model.state_dict().items():
        if value.dtype.is_floating_point:
            torch.testing.assert_close(averaged[name], d * start[name] + (1 - d) * value)
        else:
            assert torch.equal(averaged[name], value)
    assert average.decay_at(10_000) == 0.9


def test_the_average_is_a_separate_frozen_copy():
    model = small_model()
    average = WeightAverage(model, decay=0.99)
    with torch.no_grad():
        model[0].weight.zero_()
    assert not torch.equal(average.module[0].weight, model[0].weight)
    assert not any(p.requires_grad for p in average.module.parameters())


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5])
def test_a_decay_outside_0_1_is_refused(decay):
    with pytest.raises(ValueError, match=r"train\.ema"):
        WeightAverage(small_model(), decay)
