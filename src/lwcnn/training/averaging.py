"""An exponential moving average of a model's weights, what the run validates and saves when
``train.ema`` is set.

Short CPU runs end while the weights still move from batch to batch at a learning rate well above
the paper's; the average over the last few hundred steps is a smoother model than any single
step's, and choosing the best epoch on a small validation part is less of a lottery with it.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from lwcnn.errors import ConfigError


class WeightAverage:
    """``average = d * average + (1 - d) * weights`` after every optimiser step, over parameters and
    floating-point buffers (BN statistics); integer buffers are copied. ``d`` ramps up as
    ``(1 + step) / (10 + step)`` to ``decay``, so early steps do not anchor the average at the
    random initialisation."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = self.checked(decay)
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    @staticmethod
    def checked(decay: float) -> float:
        """``decay`` if it lies strictly between 0 and 1, else a ValueError naming ``train.ema``."""
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"train.ema: the decay must lie between 0 and 1 (0: off), got {decay}")
        return decay

    def decay_at(self, step: int) -> float:
        """The decay used for the update after ``step`` optimiser steps (counting from 0)."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold the weights of ``model`` after optimiser step number ``step`` into the average."""
        weight = 1.0 - self.decay_at(step)
        live = model.state_dict()
        for name, average in self.module.state_dict().items():
            if average.dtype.is_floating_point:
                average.lerp_(live[name], weight)
            else:
                average.copy_(live[name])

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)
