"""Inference-only rewrites of a trained model that keep its outputs (up to float rounding) and make
it faster in ONNX Runtime. Applied to a copy at export time; training never sees them.

The LW pyramid trains as one grouped 5x5 convolution with eight outputs per input channel
(:class:`~lwcnn.models.lw.LWDepthwisePyramid`). ONNX Runtime's blocked (NCHWc) CPU kernels only
take depthwise convolutions with one output per input channel, so that grouped convolution runs in
its generic, slow path: in lw@0.35 it is about 60% of a NEU classification. The rewrite computes the
same eight maps with depthwise convolutions of multiplier one, which stay in the blocked layout, and
reorders the pyramid's output channels kernel-major (``k * C + c`` instead of ``c * 8 + k``); the
following batch norm and 1x1 projection get their channels permuted to match, so the block computes
exactly the same function.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lwcnn.models.lw import LW_KERNELS, LWBottleneck, LWDepthwisePyramid

#: Kernels (indices into LW_KERNELS) that fit a 3x3 window; the other two are the 5x1 and 1x5.
_SMALL = tuple(i for i, (kh, kw) in enumerate(LW_KERNELS) if kh <= 3 and kw <= 3)
_LONG = tuple(i for i in range(len(LW_KERNELS)) if i not in _SMALL)


class KernelMajorPyramid(nn.Module):
    """The LW pyramid's eight maps in kernel-major channel order: the 5x1 and 1x5 kernels as
    depthwise convolutions of their own shape, the six small kernels as one depthwise 3x3
    convolution over the input repeated six times (their 'same' placements inside a 3x3 window)."""

    def __init__(self, pyramid: LWDepthwisePyramid, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        channels, window, kernels = pyramid.channels, pyramid.window, len(LW_KERNELS)
        self.channels, self.stride = channels, pyramid.stride
        with torch.no_grad():
            # BN folded in: scale the kernels, shift as a bias (both indexed [c, k] like the maps)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shift = (bn.bias - bn.running_mean * scale).reshape(channels, kernels)
            scale = scale.reshape(channels, kernels)
            full = pyramid.kernel().reshape(channels, kernels, window, window) * scale[:, :, None, None]
            self.long = nn.ParameterList(
                nn.Parameter(pyramid.weights[i].detach() * scale[:, i, None, None, None], requires_grad=False)
                for i in _LONG
            )
            self.long_bias = nn.ParameterList(
                nn.Parameter(shift[:, i].clone(), requires_grad=False) for i in _LONG
            )
            small = full[:, list(_SMALL), 1:4, 1:4].transpose(0, 1)  # (6, C, 3, 3)
            self.small = nn.Parameter(small.reshape(-1, 1, 3, 3).clone(), requires_grad=False)
            self.small_bias = nn.Parameter(
                shift[:, list(_SMALL)].transpose(0, 1).reshape(-1).clone(), requires_grad=False
            )

    #: The order of the output's kernel blocks, as indices into LW_KERNELS.
    order = _LONG + _SMALL

    def forward(self, x: Tensor) -> Tensor:
        outs = [
            F.conv2d(x, weight, bias, stride=self.stride,
                     padding=(weight.shape[2] // 2, weight.shape[3] // 2), groups=self.channels).clamp(0, 6)
            for weight, bias in zip(self.long, self.long_bias, strict=True)
        ]  # fmt: skip
        repeated = x.repeat(1, len(_SMALL), 1, 1)
        small = F.conv2d(repeated, self.small, self.small_bias, stride=self.stride, padding=1,
                         groups=self.small.shape[0])  # fmt: skip
        outs.append(small.clamp(0, 6))
        return torch.cat(outs, dim=1)


def _permute_bottleneck(block: LWBottleneck) -> None:
    channels = block.pyramid.channels
    block.pyramid = KernelMajorPyramid(block.pyramid, block.bn)
    block.bn, block.act = nn.Identity(), nn.Identity()  # folded into the pyramid
    # new channel j = (kernel order[j // C], input channel j % C) = old channel c * 8 + k
    perm = torch.tensor([c * len(LW_KERNELS) + k for k in KernelMajorPyramid.order for c in range(channels)])
    with torch.no_grad():
        conv = next(m for m in block.project if isinstance(m, nn.Conv2d))
        conv.weight.copy_(conv.weight[:, perm].clone())


#: Above this many input pixels a block keeps the grouped convolution: repeating (and re-laying out)
#: a large input six times costs more than the generic kernel saves. Measured with lw@0.35 in ONNX
#: Runtime 1.32, one thread: rewriting the first LW block (input 100x100) of a 200x200 classifier
#: gains, rewriting it at 256x256 (a 512x512 segmenter) loses; every later block gains.
LARGE_INPUT_PIXELS = 128 * 128


def for_inference(model: nn.Module, input_size: tuple[int, int] | None = None) -> nn.Module:
    """An eval-mode copy of ``model`` with the inference rewrites applied (same outputs).

    ``input_size`` (height, width), the size the model will mostly see, lets the rewrite skip LW
    blocks whose input would be larger than :data:`LARGE_INPUT_PIXELS`; without it every block is
    rewritten."""
    model = copy.deepcopy(model).eval()
    blocks = [m for m in model.modules() if isinstance(m, LWBottleneck)]
    pixels = _input_pixels(model, blocks, input_size) if input_size else {}
    for block in blocks:
        if isinstance(block.pyramid, LWDepthwisePyramid) and pixels.get(id(block), 0) <= LARGE_INPUT_PIXELS:
            _permute_bottleneck(block)
    return model


def _input_pixels(model: nn.Module, blocks: list[nn.Module], input_size: tuple[int, int]) -> dict[int, int]:
    """Pixels of each block's input (keyed by ``id`` of the block in ``model``) for one image of
    ``input_size``, found by a pass of a copy on the meta device (no memory, no arithmetic)."""
    seen: dict[int, int] = {}
    meta = copy.deepcopy(model).to("meta")
    meta_blocks = [m for m in meta.modules() if isinstance(m, LWBottleneck)]

    def record(key: int):
        return lambda module, args: seen.__setitem__(key, args[0].shape[-2] * args[0].shape[-1])

    handles = [
        copy_.register_forward_pre_hook(record(id(block)))
        for copy_, block in zip(meta_blocks, blocks, strict=True)
    ]
    try:
        with torch.no_grad():
            meta(torch.empty(1, model.spec.in_channels, *input_size, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return seen
