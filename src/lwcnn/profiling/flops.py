"""Model size: weights and FLOPs, counted the way the paper reports them."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Trainable weights (convolution and linear weights and biases, BN scales and shifts)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass, counted as 2 x multiply-accumulates of convolutions and matrix
    products (the paper's convention: "FLOPs evaluated by TensorFlow is roughly twice of MACs").

    Batch norm, activations, pooling, additions and resizing are not counted; they are a few
    percent of the total for these networks. ``input_shape`` includes the batch, e.g. (1, 3, 200, 200).
    The model is copied to the ``meta`` device, so counting allocates no memory and takes no time
    proportional to the FLOPs.
    """
    meta_model = copy.deepcopy(model).to("meta").eval()
    x = torch.empty(input_shape, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta_model(x)
    return int(counter.get_total_flops())
