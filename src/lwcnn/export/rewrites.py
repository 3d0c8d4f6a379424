"""Inference-only rewrites of a trained model that keep its outputs (up to float rounding) and make
it faster in ONNX Runtime. Applied to a copy at export time; training never sees them.

The LW pyramid trains as one grouped 5x5 convolution with eight outputs per input channel
(:class:`~lwcnn.models.lw.LWDepthwisePyramid`). ONNX Runtime's fast CPU convolutions work in a
blocked layout (NCHWc: channels in blocks of 16 with AVX-512, 8 with AVX2), and keep a tensor in it
only when every operator on the way can: depthwise convolutions with *one* output per input
channel, dense convolutions, element-wise sums, and concatenations of whole channel blocks. Anything
else (the grouped 5x5 convolution, a ``Tile``, a concatenation of 8-channel pieces) runs in the
plain layout with a reorder before and after. In ONNX Runtime's profile of lw@0.35 classifying a
3x200x200 image (``benchmarks/ort_operator_profile.py``, ONNX Runtime 1.32, AVX-512) the grouped
convolution was 64% of the kernel time, and after a first rewrite to multiplier-1 convolutions
over a repeated input, the ``Tile``, its reorders and the unaligned concatenations were still 41%.

So the export rebuilds the LW backbone (:class:`LWInferenceBackbone`):

- each kernel (or pair of kernels, below) is its own depthwise convolution with one output per
  channel, in the smallest odd window that holds it (5x1, 1x5, 3x1, 1x3 or 3x3: 40 multiply-adds
  per input channel and pixel for the kernels' 33, 56 when pairs share a window, against the
  grouped convolution's 8 x 25), with BN and ReLU6 folded in; their maps are concatenated
  kernel-major (``k * C + c``) and the projection's input channels are permuted to match;
- a block whose channel count is not a multiple of :data:`NCHWC_BLOCK` (lw@0.35 has 8 and 24) gets
  its input *doubled*: the layer before it writes every channel twice (``[x, x]``, a 1x1
  convolution with its rows repeated, which ONNX Runtime pads to a whole block anyway). On ``[x, x]``
  a depthwise convolution computes two kernels at once, one on each copy, so the block needs four
  convolutions whose outputs are whole blocks, and no ``Tile``; the layer after a doubled map reads
  one copy (zero weights on the other) and residual sums add doubled maps to doubled maps.

Every other layer (stems, decoders, heads) is left as trained: ONNX Runtime folds their BN itself.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lwcnn.models.layers import ConvBNAct
from lwcnn.models.lw import LW_KERNELS, LWBackbone, LWBottleneck, block_out_channels

#: Channels per block of ONNX Runtime's NCHWc layout with AVX-512 (AVX2 has 8, which every lwcnn
#: channel count, a multiple of 8, already fills; there doubling costs a little and changes nothing).
NCHWC_BLOCK = 16

#: On a doubled input each depthwise convolution computes two kernels, one per copy; pairs chosen
#: to share a small window: (5x1, 3x1) in 5x1, (1x5, 1x3) in 1x5, (2x1, 1x2) and (2x2, 3x3) in 3x3.
KERNEL_PAIRS: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((5, 1), (3, 1)),
    ((1, 5), (1, 3)),
    ((2, 1), (1, 2)),
    ((2, 2), (3, 3)),
)


def _odd(size: int) -> int:
    return size if size % 2 else size + 1


def _kernel_groups(paired: bool) -> list[tuple[tuple[int, ...], tuple[int, int]]]:
    """(indices into LW_KERNELS, window) for each depthwise convolution of a block: one per kernel,
    or one per pair of :data:`KERNEL_PAIRS` when the input is doubled."""
    if not paired:
        return [((k,), (_odd(kh), _odd(kw))) for k, (kh, kw) in enumerate(LW_KERNELS)]
    groups = []
    for pair in KERNEL_PAIRS:
        indices = tuple(LW_KERNELS.index(shape) for shape in pair)
        window = (max(_odd(kh) for kh, _ in pair), max(_odd(kw) for _, kw in pair))
        groups.append((indices, window))
    return groups


class LWInferenceBlock(nn.Module):
    """An LW bottleneck in the form ONNX Runtime runs fastest (module docstring): same function.

    ``doubled_input``: the input is ``[x, x]`` (2C channels); ``doubled_output``: write ``[y, y]``.
    """

    def __init__(self, block: LWBottleneck, doubled_input: bool, doubled_output: bool) -> None:
        super().__init__()
        pyramid, bn = block.pyramid, block.bn
        channels, kernels, window = pyramid.channels, len(LW_KERNELS), pyramid.window
        self.stride = pyramid.stride
        self.use_residual = block.use_residual
        self.groups = _kernel_groups(paired=doubled_input)
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shift = (bn.bias - bn.running_mean * scale).reshape(channels, kernels)
            # (C, 8, 5, 5): every kernel at its 'same' placement in the 5x5 window, BN scale folded
            full = pyramid.kernel().reshape(channels, kernels, window, window)
            full = full * scale.reshape(channels, kernels)[:, :, None, None]
            centre = window // 2
            for index, (indices, (h, w)) in enumerate(self.groups):
                rows = slice(centre - h // 2, centre - h // 2 + h)
                cols = slice(centre - w // 2, centre - w // 2 + w)
                cut, rest = full[:, list(indices), rows, cols], full[:, list(indices)].clone()
                rest[:, :, rows, cols] = 0
                assert not rest.any(), "a kernel tap outside its window"
                # channel i * C + c: kernel indices[i] on input channel c (copy i of a doubled input)
                self.register_buffer(f"weight{index}", cut.transpose(0, 1).reshape(-1, 1, h, w).clone())
                bias = shift[:, list(indices)].transpose(0, 1).reshape(-1)
                self.register_buffer(f"bias{index}", bias.clone())
            order = [k for indices, _ in self.groups for k in indices]
            # new projection input j = (kernel order[j // C], channel j % C) = old channel c * 8 + k
            permutation = [c * kernels + k for k in order for c in range(channels)]
            self.project = copy.deepcopy(block.project)
            conv = self.project[_conv_position(self.project)]
            conv.weight.copy_(conv.weight[:, permutation].clone())
            if doubled_output:
                _double_outputs(self.project)
        self.channels_per_conv = channels * len(self.groups[0][0])

    def forward(self, x: Tensor) -> Tensor:
        maps = []
        for index, (_, (h, w)) in enumerate(self.groups):
            weight, bias = getattr(self, f"weight{index}"), getattr(self, f"bias{index}")
            maps.append(
                F.conv2d(x, weight, bias, stride=self.stride, padding=(h // 2, w // 2),
                         groups=self.channels_per_conv).clamp(0, 6)
            )  # fmt: skip
        out = self.project(torch.cat(maps, dim=1))
        return out + x if self.use_residual else out


class LWInferenceBackbone(nn.Module):
    """The LW backbone rebuilt for inference (module docstring); returns the same features."""

    def __init__(self, backbone: LWBackbone, block: int = NCHWC_BLOCK) -> None:
        super().__init__()
        self.feature_strides, self.feature_channels = backbone.feature_strides, backbone.feature_channels
        self.out_channels, self.width = backbone.out_channels, backbone.width
        originals = list(backbone.blocks)
        blocks: list[nn.Module] = []
        doubled_input = False
        #: block index of each feature the backbone returns -> channels to keep (None: all; a doubled
        #: map gives its first copy)
        self._taps: dict[int, int | None] = {}
        for index, original in enumerate(originals):
            following = originals[index + 1] if index + 1 < len(originals) else None
            out_channels = block_out_channels(original)
            # double the maps of unaligned width that an LW block reads or writes (an LW block's
            # residual adds its input, so its output is doubled when its input is)
            touches_lw = isinstance(original, LWBottleneck) or isinstance(following, LWBottleneck)
            doubled_output = out_channels % block != 0 and touches_lw
            if isinstance(original, LWBottleneck):
                blocks.append(LWInferenceBlock(original, doubled_input, doubled_output))
            else:
                rebuilt = copy.deepcopy(original)
                with torch.no_grad():
                    if doubled_input:
                        _read_first_copy(rebuilt)
                    if doubled_output:
                        _double_outputs(rebuilt)
                blocks.append(rebuilt)
            if index in backbone._taps:
                self._taps[index] = out_channels if doubled_output else None
            doubled_input = doubled_output
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        features: list[Tensor] = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self._taps:
                keep = self._taps[index]
                features.append(x if keep is None else x[:, :keep])
        return features


def for_inference(model: nn.Module, block: int = NCHWC_BLOCK) -> nn.Module:
    """An eval-mode copy of ``model`` with the inference rewrites applied (same outputs): every LW
    backbone in it replaced by an :class:`LWInferenceBackbone` (channel ``block`` of the blocked
    layout to align to). Models without an LW backbone come back unchanged."""
    model = copy.deepcopy(model).eval()
    for name, module in list(model.named_modules()):
        if isinstance(module, LWBackbone):
            rebuilt = LWInferenceBackbone(module, block).eval()
            if not name:
                return rebuilt
            parent_name, _, attribute = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, attribute, rebuilt)
    return model


def _conv_position(layer: ConvBNAct) -> int:
    return next(i for i, m in enumerate(layer) if isinstance(m, nn.Conv2d))


def _double_outputs(layer: ConvBNAct) -> None:
    """Make a conv + BN (+ activation) write every output channel twice: ``[y, y]``."""
    for position, module in enumerate(layer):
        if isinstance(module, nn.Conv2d):
            assert module.groups == 1 and module.bias is None
            doubled = nn.Conv2d(module.in_channels, 2 * module.out_channels, module.kernel_size,
                                module.stride, module.padding, module.dilation, bias=False)  # fmt: skip
            doubled.weight.copy_(torch.cat([module.weight, module.weight]))
        elif isinstance(module, nn.BatchNorm2d):
            doubled = nn.BatchNorm2d(2 * module.num_features, eps=module.eps)
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(doubled, name).copy_(torch.cat([getattr(module, name)] * 2))
        else:
            continue
        layer[position] = doubled.eval()
    layer.out_channels *= 2


def _read_first_copy(layer: ConvBNAct) -> None:
    """Make a convolution read a doubled input ``[x, x]``: the first copy's weights, zeros for the
    second."""
    position = _conv_position(layer)
    conv = layer[position]
    assert conv.groups == 1
    wide = nn.Conv2d(2 * conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                     conv.padding, conv.dilation, bias=conv.bias is not None)  # fmt: skip
    wide.weight.copy_(torch.cat([conv.weight, torch.zeros_like(conv.weight)], dim=1))
    if conv.bias is not None:
        wide.bias.copy_(conv.bias)
    layer[position] = wide
