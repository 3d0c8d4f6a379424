"""Model size: weights and FLOPs, counted the way the paper reports them."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


def count_parameters(model: nn.Module) -> int:
    """Trainable weights (convolution and linear weights and biases, BN scales and shifts)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass, counted as 2 x multiply-accumulates of convolutions and fully
    connected layers (the paper's convention: "FLOPs evaluated by TensorFlow is roughly twice of MACs").

    Counted per module: ``nn.Conv2d``, ``nn.Linear``, and any module with a ``macs(output)`` method,
    which reports the work of the operation it stands for (the LW depthwise pyramid counts its 33
    taps per channel, not the zero taps of the 5x5 window it computes them in). Batch norm,
    activations, pooling, additions and resizing are not counted: a few percent of the total for
    these networks. ``input_shape`` includes the batch, e.g. (1, 3, 200, 200). The model is copied
    to the ``meta`` device, so counting allocates no memory and takes no time proportional to the FLOPs.
    """
    meta_model = copy.deepcopy(model).to("meta").eval()
    total = 0

    def add(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        total += _macs(module, output)

    handles = [
        module.register_forward_hook(add)
        for module in meta_model.modules()
        if hasattr(module, "macs") or isinstance(module, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            meta_model(torch.empty(input_shape, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return 2 * total


def _macs(module: nn.Module, output: Tensor) -> int:
    if hasattr(module, "macs"):
        return int(module.macs(output))
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    assert isinstance(module, nn.Linear)
    return output.numel() * module.in_features
